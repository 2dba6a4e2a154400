"""Which redis-py errors are Redis faults (retried by workers and loops, `ConnectionFailed` at the API) and which are
mistakes that must surface as they are."""

from __future__ import annotations

import re

import fakeredis
import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    MovedError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from workq.connection import describe, is_redis_fault, translated_faults
from workq.errors import ConnectionFailed

MISCONF = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that "
    "may modify the data set are disabled."
)
REFUSALS = [
    ReadOnlyError("You can't write against a read only replica."),
    redis.ResponseError(MISCONF),
    redis.ResponseError(MISCONF + " script: 563f67e7, on @user_script:1."),
    redis.ResponseError("NOREPLICAS Not enough good replicas to write."),
    TryAgainError("Multiple keys request during rehashing of slot"),
    MovedError("3999 127.0.0.1:6381"),
    ClusterError("TTL exhausted."),
    ClusterDownError("The cluster is down"),
    SlotNotCoveredError('Slot "3999" not covered by the cluster.'),
    RedisClusterException("Redis Cluster cannot be connected. Please provide at least one reachable node: refused"),
    RedisClusterException("All slots are not covered after query all startup_nodes. 10 of 16384 covered..."),
]
MISTAKES = [
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    redis.ResponseError("ERR unknown command 'MISCONF'"),
    redis.ResponseError("NOSCRIPT No matching script."),
    redis.exceptions.NoPermissionError("this user has no permissions to run the 'evalsha' command"),
    RedisClusterException("Invalid args in command: ('GET',)"),
    AttributeError("'Job' object has no attribute 'idd'"),
    ValueError("bad"),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=repr)
def test_refusals_of_a_command_redis_did_not_run_are_faults(refusal: Exception) -> None:
    assert is_redis_fault(refusal)


@pytest.mark.parametrize("fault", [redis.ConnectionError("refused"), redis.TimeoutError("slow")], ids=repr)
def test_connection_faults_stay_faults(fault: Exception) -> None:
    assert is_redis_fault(fault)


@pytest.mark.parametrize("mistake", MISTAKES, ids=repr)
def test_errors_of_the_call_itself_are_not_faults(mistake: Exception) -> None:
    assert not is_redis_fault(mistake)


def test_an_attribute_error_from_inside_redis_py_is_a_fault_one_from_elsewhere_is_not() -> None:
    """redis-py's cluster client has raised AttributeError while refreshing its topology during a failover."""
    cluster = RedisCluster.__new__(RedisCluster)  # a client whose topology was never loaded
    with pytest.raises(AttributeError) as inside:
        cluster.get_redis_connection(object())  # type: ignore[arg-type]
    assert is_redis_fault(inside.value)

    with pytest.raises(AttributeError) as outside:
        object().missing  # type: ignore[attr-defined]  # noqa: B018
    assert not is_redis_fault(outside.value)


@pytest.mark.parametrize("refusal", REFUSALS, ids=repr)
def test_refusals_become_connection_failed_naming_the_server(
    fake_redis: fakeredis.FakeRedis, refusal: Exception
) -> None:
    expected = re.escape(f"Redis at {describe(fake_redis)} cannot serve this now")
    with pytest.raises(ConnectionFailed, match=expected) as raised, translated_faults(fake_redis):
        raise refusal
    assert raised.value.__cause__ is refusal


@pytest.mark.parametrize("mistake", MISTAKES, ids=repr)
def test_mistakes_pass_through_translation_untouched(fake_redis: fakeredis.FakeRedis, mistake: Exception) -> None:
    with pytest.raises(type(mistake)) as raised, translated_faults(fake_redis):
        raise mistake
    assert raised.value is mistake
