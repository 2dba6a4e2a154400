"""job_status and wait_result on fakeredis: a job that moves on while it is being looked for is still found."""

from __future__ import annotations

import json
from typing import Any

import fakeredis

from workq.client import Client
from workq.job import Job
from workq.keys import Keys


class FinishingWhileLookedFor(fakeredis.FakeRedis):
    """A Redis on which job `job` is fetched, run and acknowledged with a kept result (what a pool does in a few
    milliseconds) just as a lookup reads its queue: it was queued when the in-progress lists were read, and is
    done when the queue is."""

    def __init__(self, keys: Keys, job: Job, **options: Any) -> None:
        super().__init__(**options)
        self.finish: tuple[Keys, Job] | None = (keys, job)

    def lrange(self, name: Any, start: int, end: int) -> Any:
        if self.finish is not None and name == self.finish[0].queue(self.finish[1].name):
            keys, job = self.finish
            self.finish = None
            record = {"state": "done", "job_name": job.name, "result": {"answer": 42}, "fails": 0, "last_err": ""}
            pipe = super().pipeline(transaction=True)
            pipe.lrem(keys.queue(job.name), 1, job.to_json())
            pipe.set(keys.result(job.id), json.dumps({**record, "updated_at": job.enqueued_at}), ex=60)
            pipe.execute()
        return super().lrange(name, start, end)


def finishing_client(namespace: str) -> tuple[Client, Job]:
    keys = Keys(namespace)
    job = Job(name="answer", id="a1b2c3d4e5f6a1b2c3d4e5f6", enqueued_at=1_700_000_000)
    redis_client = FinishingWhileLookedFor(keys, job, server=fakeredis.FakeServer())
    redis_client.sadd(keys.known_jobs, job.name)
    redis_client.lpush(keys.queue(job.name), job.to_json())
    return Client(namespace, redis_client), job


def test_a_job_that_finishes_with_a_kept_result_while_looked_for_is_done_not_missing(namespace: str) -> None:
    client, job = finishing_client(namespace)
    status = client.job_status(job.id)
    assert status is not None and (status.state, status.result) == ("done", {"answer": 42})


def test_wait_result_returns_the_result_of_a_job_that_finishes_while_looked_for(namespace: str) -> None:
    client, job = finishing_client(namespace)
    assert client.wait_result(job.id, timeout=5) == {"answer": 42}
