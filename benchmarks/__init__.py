"""Benchmarks: the national model against bare SimPy, and the nearest-station search.

Run from the repository root: ``python -m benchmarks.national`` and
``python -m benchmarks.nearest`` (``--quick`` for a smoke test). PERFORMANCE.md holds
the measured numbers and how to read them.
"""
