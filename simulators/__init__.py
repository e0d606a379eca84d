"""Ironwatch simulators."""
