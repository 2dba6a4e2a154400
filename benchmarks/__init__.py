"""Benchmarks of workq against RQ, Dramatiq and a raw redis-py ceiling: `python -m benchmarks.run`."""
