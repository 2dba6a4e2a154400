"""Job control on jobs gocraft/work enqueued (master and v0.5.1): `Client.cancel` finds and removes them by id,
and releases the unique locks Go took, so Go can enqueue the same unique job again at once."""

from __future__ import annotations

import pytest

from interop.fleet import Fleet
from workq import Client, JobNotFound
from workq.keys import Keys


@pytest.mark.parametrize("version", ["master", "v0.5.1"])
def test_jobs_gocraft_work_enqueued_are_cancelled_by_id_and_their_locks_released(fleet: Fleet, version: str) -> None:
    client = Client(fleet.namespace, fleet.redis)
    plain = fleet.go_job(version, "report", {"n": 1})
    unique = fleet.go_job(version, "report", {"n": 2}, unique=True)
    delayed = fleet.go_job(version, "report", {"n": 3}, unique=True, in_seconds=3600)
    assert fleet.go_enqueue(version, "report", {"n": 2}, unique=True) == ["dup"]
    assert client.cancel(plain.id) == "queued"
    assert client.cancel(unique.id) == "queued"
    assert client.cancel(delayed.id) == "scheduled"
    assert client.queued_jobs("report") == ([], 0) and client.scheduled_jobs() == ([], 0)
    assert fleet.go_enqueue(version, "report", {"n": 2}, unique=True) != ["dup"], "Go's lock was released"
    assert fleet.go_enqueue(version, "report", {"n": 3}, unique=True, in_seconds=3600) != ["dup"]
    with pytest.raises(JobNotFound):
        client.cancel(plain.id)
    assert not fleet.redis.exists(Keys(fleet.namespace).cancel_request(plain.id)), "nothing but the result record"
