"""The quickstart's jobs, tested with workq's testing kit: no Redis server, no waiting, no threads.

    pytest examples/quickstart/tests

`workq_harness` comes with workq (`pip install 'workq-redis[testing]'`): call it with your pool and get a harness on an
in-memory Redis with a fake clock, closed after the test.
"""

from __future__ import annotations

import pytest

from examples.quickstart.jobs import charge_card, pool, resize_image, send_welcome
from workq.testing import HarnessFactory, TestHarness


@pytest.fixture
def h(workq_harness: HarnessFactory) -> TestHarness:
    """A harness over the app's pool for each test: in-memory Redis, fake clock, nothing shared between tests."""
    return workq_harness(pool)


def test_a_welcome_email_is_sent_once(h: TestHarness) -> None:
    job = send_welcome.enqueue(address="ada@example.com")
    result = h.drain()
    assert [done.id for done in result.processed] == [job.id]
    assert h.queued("send_welcome") == []


def test_a_bad_address_fails_and_waits_for_its_retry(h: TestHarness) -> None:
    send_welcome.enqueue(address="not-an-address")
    result = h.drain()
    assert [failed.last_err for failed in result.failed] == ["ValueError: not an email address: 'not-an-address'"]
    [retry] = h.retrying()
    assert retry.fails == 1 and retry.retry_at > h.now


def test_a_declined_charge_is_retried_after_its_one_second_backoff(h: TestHarness) -> None:
    charge_card.enqueue(order=42, cents=1999)
    assert len(h.drain().failed) == 1  # the gateway times out once
    h.advance(1)
    [charged] = h.drain().processed
    assert charged.args == {"order": 42, "cents": 1999} and charged.fails == 1


def test_an_undecodable_image_ends_in_the_dead_queue(h: TestHarness) -> None:
    resize_image.enqueue(path="cat.heic")
    h.drain()
    h.advance()  # no argument: to the next due job
    assert [dead.name for dead in h.drain().dead] == ["resize_image"]
    [dead] = h.dead()
    assert dead.fails == 2 and dead.last_err == "ValueError: cannot decode cat.heic"


def test_eager_mode_raises_what_the_handler_raised(workq_harness: HarnessFactory) -> None:
    workq_harness(pool, eager=True)
    send_welcome.enqueue(address="grace@example.com")  # ran already
    with pytest.raises(ValueError, match="not an email address"):
        send_welcome.enqueue(address="nobody")
