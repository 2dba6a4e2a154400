"""workq over TLS: a TLS-only redis-server (`--port 0`) with a certificate made by the test's own CA; `rediss://`
URLs carry the CA (and, for mutual TLS, the client certificate) as query options, for the sync and the async
clients alike; plain connections and unverifiable servers fail with ConnectionFailed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from integration.test_aio_enqueuer import VARIANTS, check_variant_stores_the_same_bytes

from topologies.async_checks import check_async_handlers_run_async_enqueues
from topologies.conftest import PoolMaker
from topologies.servers import HOST, TESTS_DIR, Certificates, RedisProcess, tls_url
from workq import Client, ConnectionFailed, Enqueuer, Job
from workq.aio import AsyncEnqueuer

NAMESPACE = "tls"


def test_jobs_run_over_tls(tls_only_server: RedisProcess, certificates: Certificates, make_pool: PoolMaker) -> None:
    url = tls_url(tls_only_server, certificates)
    ran: list[str] = []
    pool = make_pool(NAMESPACE, url, concurrency=3)
    pool.job("convert", lambda job: ran.append(job.id))
    enqueuer = Enqueuer(NAMESPACE, url)
    jobs = enqueuer.enqueue_many("convert", [{"n": n} for n in range(50)])
    scheduled = enqueuer.enqueue_in("convert", 3600, {"n": -1})
    pool.start()
    pool.drain(timeout=20)

    assert sorted(ran) == sorted(job.id for job in jobs)
    client = Client(NAMESPACE, url)
    assert [(queue.job_name, queue.count) for queue in client.queues()] == [("convert", 0)]
    assert [job.id for job in client.scheduled_jobs()[0]] == [scheduled.id]
    assert [pool.worker_pool_id for pool in client.worker_pool_heartbeats()] == [pool.pool_id]

    listed = subprocess.run(
        [sys.executable, "-m", "workq", "queues", "--json", "--redis-url", url, "--namespace", NAMESPACE],
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert [(row["job_name"], row["processed_today"]) for row in json.loads(listed.stdout)] == [("convert", 50)]


def test_a_plain_connection_to_the_tls_port_fails(tls_only_server: RedisProcess, make_pool: PoolMaker) -> None:
    url = f"redis://{HOST}:{tls_only_server.port}/0"
    with pytest.raises(ConnectionFailed, match=f"{HOST}:{tls_only_server.port}"):
        Enqueuer(NAMESPACE, url).enqueue("convert")
    with pytest.raises(ConnectionFailed):
        Client(NAMESPACE, url).queues()
    pool = make_pool(NAMESPACE, url)
    pool.job("convert", lambda job: None)
    with pytest.raises(ConnectionFailed):
        pool.start()

    listed = subprocess.run(
        [sys.executable, "-m", "workq", "queues", "--redis-url", url, "--namespace", NAMESPACE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 1
    assert listed.stderr.startswith("workq: cannot reach Redis") and "Traceback" not in listed.stderr


def test_a_server_certificate_from_an_unknown_ca_is_refused(tls_only_server: RedisProcess) -> None:
    url = f"rediss://{HOST}:{tls_only_server.port}/0?ssl_cert_reqs=required"  # the system CAs only
    with pytest.raises(ConnectionFailed, match="certificate verify failed"):
        Enqueuer(NAMESPACE, url).enqueue("convert")


def test_mutual_tls_needs_the_client_certificate_in_the_url(
    mutual_tls_server: RedisProcess, certificates: Certificates
) -> None:
    with_certificate = tls_url(mutual_tls_server, certificates, client_certificate=True)
    job = Enqueuer(NAMESPACE, with_certificate).enqueue("convert", {"n": 1})
    assert [queued.id for queued in Client(NAMESPACE, with_certificate).peek("convert")] == [job.id]

    without = tls_url(mutual_tls_server, certificates)
    with pytest.raises(ConnectionFailed):
        Enqueuer(NAMESPACE, without).enqueue("convert", {"n": 2})
    assert [queued.id for queued in Client(NAMESPACE, with_certificate).peek("convert")] == [job.id]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_async_enqueue_variant_stores_the_same_bytes_over_tls(
    variant: str,
    tls_only_server: RedisProcess,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = tls_url(tls_only_server, certificates)
    with tls_only_server.client() as server:
        check_variant_stores_the_same_bytes(variant, url, "aio-tls", server, monkeypatch)


def test_async_handlers_run_over_tls(
    tls_only_server: RedisProcess, certificates: Certificates, make_pool: PoolMaker
) -> None:
    check_async_handlers_run_async_enqueues(tls_url(tls_only_server, certificates), "aio-tls-jobs", make_pool)


def test_mutual_tls_needs_the_client_certificate_for_the_async_enqueuer_too(
    mutual_tls_server: RedisProcess, certificates: Certificates
) -> None:
    async def enqueue(url: str) -> Job:
        async with AsyncEnqueuer("aio-mtls", url) as enqueuer:
            return await enqueuer.enqueue("convert", {"n": 1})

    with_certificate = tls_url(mutual_tls_server, certificates, client_certificate=True)
    job = asyncio.run(enqueue(with_certificate))
    with pytest.raises(ConnectionFailed):
        asyncio.run(enqueue(tls_url(mutual_tls_server, certificates)))
    assert [queued.id for queued in Client("aio-mtls", with_certificate).peek("convert")] == [job.id]


def test_the_async_enqueuer_refuses_a_plain_connection_to_the_tls_port(tls_only_server: RedisProcess) -> None:
    async def enqueue() -> None:
        async with AsyncEnqueuer("aio-tls", f"redis://{HOST}:{tls_only_server.port}/0") as enqueuer:
            await enqueuer.enqueue("convert")

    with pytest.raises(ConnectionFailed, match=f"{HOST}:{tls_only_server.port}"):
        asyncio.run(enqueue())
