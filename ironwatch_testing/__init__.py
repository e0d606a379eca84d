"""Test harness shared by the tests and the benchmarks (synthetic telemetry, publishers).

Not part of any role: no product package imports it.
"""
