"""The benchmark job as each measured queue defines it; every one calls `benchmarks.effect.record_run`."""
