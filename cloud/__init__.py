"""Ironwatch cloud."""
