"""Every Redis key of a namespace, as wire-format.md names them."""

from __future__ import annotations

import pytest

from workq.keys import Keys, key_prefix

POOL = "a1b2c3d4e5f6a1b2c3d4e5f6"


def test_job_keys_follow_the_wire_format_table() -> None:
    keys = Keys("work")
    assert keys.queue("send_email") == "work:jobs:send_email"
    assert keys.queue_prefix == "work:jobs:"
    assert keys.in_progress("send_email", POOL) == f"work:jobs:send_email:{POOL}:inprogress"
    assert keys.paused("send_email") == "work:jobs:send_email:paused"
    assert keys.lock("send_email") == "work:jobs:send_email:lock"
    assert keys.lock_info("send_email") == "work:jobs:send_email:lock_info"
    assert keys.max_concurrency("send_email") == "work:jobs:send_email:max_concurrency"


def test_namespace_wide_keys_follow_the_wire_format_table() -> None:
    keys = Keys("work")
    assert keys.retry == "work:retry"
    assert keys.scheduled == "work:scheduled"
    assert keys.dead == "work:dead"
    assert keys.known_jobs == "work:known_jobs"
    assert keys.worker_pools == "work:worker_pools"
    assert keys.worker_pool(POOL) == f"work:worker_pools:{POOL}"
    assert keys.worker("w1") == "work:worker:w1"
    assert keys.last_periodic_enqueue == "work:last_periodic_enqueue"


def test_unique_key_is_name_then_key_json_verbatim() -> None:
    assert Keys("work").unique("send_email", '{"a":1}\n') == 'work:unique:send_email:{"a":1}\n'
    assert Keys("work").unique("send_email", "") == "work:unique:send_email:"


def test_queue_key_minus_queue_prefix_is_the_job_name() -> None:
    keys = Keys("work")
    assert keys.queue("send_email").removeprefix(keys.queue_prefix) == "send_email"


@pytest.mark.parametrize(
    ("namespace", "prefix"),
    [("work", "work:"), ("", ""), ("work:", "work:"), ("a:b", "a:b:"), ("{app}", "{app}:")],
)
def test_prefix_adds_one_colon_unless_empty_or_already_there(namespace: str, prefix: str) -> None:
    assert key_prefix(namespace) == prefix
    assert Keys(namespace).prefix == prefix


def test_empty_namespace_gives_bare_keys() -> None:
    assert Keys("").queue("x") == "jobs:x"
    assert Keys("").retry == "retry"


def test_namespace_ending_in_colon_is_not_doubled() -> None:
    assert Keys("work:").queue("x") == "work:jobs:x"
    assert Keys("work:").dead == "work:dead"


def test_braced_namespace_keeps_every_key_in_its_cluster_slot() -> None:
    keys = Keys("{app}")
    every_key = [
        keys.queue("x"),
        keys.in_progress("x", POOL),
        keys.paused("x"),
        keys.lock("x"),
        keys.lock_info("x"),
        keys.max_concurrency("x"),
        keys.retry,
        keys.scheduled,
        keys.dead,
        keys.known_jobs,
        keys.worker_pools,
        keys.worker_pool(POOL),
        keys.worker("w"),
        keys.unique("x", ""),
        keys.last_periodic_enqueue,
    ]
    assert all(key.startswith("{app}:") for key in every_key)


def test_unique_for_encodes_the_key_map_as_go_with_a_trailing_newline() -> None:
    key = Keys("work").unique_for("send_email", {"b": 2.0, "a": "<x>"})
    assert key == 'work:unique:send_email:{"a":"\\u003cx\\u003e","b":2}\n'


def test_unique_for_without_a_map_ends_at_the_colon() -> None:
    assert Keys("work").unique_for("send_email", None) == "work:unique:send_email:"


def test_unique_for_an_empty_map_is_not_the_same_as_none() -> None:
    assert Keys("work").unique_for("x", {}) == "work:unique:x:{}\n"


def test_unique_for_ignores_key_order() -> None:
    keys = Keys("work")
    assert keys.unique_for("x", {"a": 1, "b": 2}) == keys.unique_for("x", {"b": 2, "a": 1})


def test_periodic_high_water_lives_under_the_prefix() -> None:
    assert Keys("{app}").periodic_high_water.startswith("{app}:")
