"""Integration tests: workq against a real Redis, with real worker threads.

A package, so that its module names (`integration.test_worker_pool`) never clash with tests/unit's.
"""
