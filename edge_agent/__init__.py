"""Ironwatch edge_agent."""
