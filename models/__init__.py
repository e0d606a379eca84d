"""Ironwatch models."""
