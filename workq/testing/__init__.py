"""Testing an app's jobs without a Redis server, a clock or waiting: `TestHarness` and the `workq_harness` fixture.

Needs fakeredis with Lua: `pip install 'workq-redis[testing]'`.
"""

from workq.testing.harness import DrainResult, FakeClock, HarnessFactory, TestHarness

__all__ = ["DrainResult", "FakeClock", "HarnessFactory", "TestHarness"]
