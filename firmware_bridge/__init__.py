"""Ironwatch firmware_bridge."""
