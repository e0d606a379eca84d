"""Ironwatch: predictive maintenance for rotating machines."""

__version__ = "0.1.0"
