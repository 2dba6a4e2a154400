"""Make docs/dashboard.png: a demo namespace with real pools, busy workers, a backlog, retries and dead jobs,
shown by `workq web` in Debian's chromium. Run from the repository root:

    PYTHONPATH=tests .venv/bin/python -m web.screenshot [docs/dashboard.png] [--page dead]
    PYTHONPATH=tests .venv/bin/python -m web.screenshot docs/charts.png --page charts

Needs the Redis of $WORKQ_REDIS_URL (default redis://127.0.0.1:6379/0); uses and then deletes namespace
`workq-demo`."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import redis

from support import wait_until
from web.harness import CHROMIUM, CHROMIUM_ARGS, ServedDashboard
from web.sample_jobs import file_minute
from workq import Client, Enqueuer, Job, WorkerPool
from workq.throughput import read_totals

NAMESPACE = "workq-demo"
REDIS_URL = os.environ.get("WORKQ_REDIS_URL", "redis://127.0.0.1:6379/0")
IMAGE_ERRORS = [
    "UnidentifiedImageError: cannot identify image file 'uploads/8841.heic'",
    "OSError: image file is truncated (312 bytes not processed)",
    "DecompressionBombError: image of 298 megapixels exceeds the limit",
]


class Demo:
    """Two pools on NAMESPACE whose handlers succeed, fail (decided by the args, so every run looks the same), or
    block until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.web = WorkerPool(NAMESPACE, REDIS_URL, concurrency=4, heartbeat_interval=1)
        self.billing = WorkerPool(NAMESPACE, REDIS_URL, concurrency=2, heartbeat_interval=1)
        self.web.job("send_email", self.send_email, max_fails=4, priority=5)
        self.web.job("resize_image", self.resize_image, max_fails=1)
        self.web.job("sync_crm", self.sync_crm, max_fails=4)
        self.billing.job("generate_invoice", self.generate_invoice)
        self.billing.job("nightly_report", self.generate_invoice)

    def send_email(self, job: Job) -> None:
        if job.arg_bool("block"):
            job.checkin("waiting for SMTP relay mx2.example.com")
            self.release.wait()
        elif job.arg_str("to").endswith("17@example.com") and job.arg_str("template") == "receipt":
            raise ConnectionError("smtp.example.com:587 refused the connection")

    def resize_image(self, job: Job) -> None:
        if job.arg_bool("block"):
            job.checkin("encoding 1280w variant")
            self.release.wait()
        elif job.arg_int("upload_id") % 13 == 5:
            raise RuntimeError(IMAGE_ERRORS[job.arg_int("upload_id") % len(IMAGE_ERRORS)])

    def sync_crm(self, job: Job) -> None:
        job.checkin(f"contacts page {job.arg_int('page')} of 12")
        self.release.wait()

    def generate_invoice(self, job: Job) -> None:
        if job.arg_bool("block"):
            job.checkin("rendering PDF, 41 of 60 lines")
            self.release.wait()


def populate(demo: Demo, client: Client) -> None:
    enqueuer = Enqueuer(NAMESPACE, REDIS_URL)
    demo.web.start()
    demo.billing.start()
    enqueuer.enqueue_many("send_email", [{"to": f"user{n}@example.com", "template": "receipt"} for n in range(240)])
    enqueuer.enqueue_many("resize_image", [{"upload_id": 8000 + n, "sizes": [320, 1280]} for n in range(90)])
    enqueuer.enqueue_many("generate_invoice", [{"account": 100 + n * 37 % 900, "month": "2026-10"} for n in range(35)])
    wait_until(lambda: sum(queue.count for queue in client.queues()) == 0, timeout=60, what="the demo jobs to run")

    enqueuer.enqueue("sync_crm", {"page": 3, "account": "acme-corp", "since": "2026-11-01T00:00:00Z"})
    enqueuer.enqueue("sync_crm", {"page": 7, "account": "globex", "since": "2026-11-20T00:00:00Z"})
    enqueuer.enqueue("send_email", {"to": "ops@example.com", "template": "weekly_digest", "block": True})
    enqueuer.enqueue("resize_image", {"upload_id": 9001, "sizes": [320, 1280], "block": True})
    enqueuer.enqueue("generate_invoice", {"account": 4471, "month": "2026-11", "block": True})
    wait_until(lambda: len([w for w in client.worker_observations() if w.checkin]) == 5, what="the busy workers")

    # With every worker of the first pool busy, these wait in their queues and age.
    backdated = Enqueuer(NAMESPACE, REDIS_URL, clock=lambda: time.time() - 95)
    backdated.enqueue_many("resize_image", [{"upload_id": 9100 + n, "sizes": [320, 1280]} for n in range(37)])
    backdated.enqueue_many("send_email", [{"to": f"lead{n}@example.com", "template": "welcome"} for n in range(12)])
    client.pause("nightly_report")
    Enqueuer(NAMESPACE, REDIS_URL, clock=lambda: time.time() - 1500).enqueue("nightly_report", {"date": "2026-11-22"})
    for hours in (1, 6, 24):
        enqueuer.enqueue_in("nightly_report", hours * 3600, {"date": "2026-11-23"})


def backfill_history(redis_client: redis.Redis, client: Client) -> None:
    """The hour and the week before the demo's own runs, written in the tallies' layout: a steady email load with a
    burst of SMTP failures, image uploads in waves with a queue backing up, invoices at the top of the hour."""
    now = int(redis_client.time()[0])
    for back in range(1, 60):
        at = now - back * 60
        minute = at // 60 % 60
        smtp_down = 20 <= back <= 26
        file_minute(
            redis_client,
            NAMESPACE,
            "send_email",
            at,
            processed=180 + (minute * 37) % 60 - (120 if smtp_down else 0),
            failed=(45 + back % 9) if smtp_down else back % 4,
            latency=(back - 19) * 20 if smtp_down else 1,
        )
        wave = abs(30 - (minute * 2) % 60)
        file_minute(
            redis_client,
            NAMESPACE,
            "resize_image",
            at,
            processed=40 + wave * 3,
            failed=wave // 9,
            latency=max(0, wave - 18) * 4,
        )
        file_minute(redis_client, NAMESPACE, "generate_invoice", at, processed=140 if minute in (0, 1) else 3, failed=0)
    day = 86400
    for back in range(7):
        for name, processed, failed in (
            ("send_email", 250_000 + back * 9_000, 800 + back * 130),
            ("resize_image", 90_000 - back * 4_000, 1_200 - back * 90),
            ("generate_invoice", 9_000 + (back % 3) * 2_500, 4 * back),
            ("nightly_report", 1, 0),
        ):
            key = client.keys.stats(name, now - back * day)
            share = (now % day) / day if back == 0 else 1.0  # today so far, on top of the demo's own runs
            redis_client.hincrby(key, "processed", int(processed * share))
            redis_client.hincrby(key, "failed", int(failed * share))
            redis_client.expire(key, 8 * day)


def tallies_written(client: Client) -> bool:
    """The demo pools have written their tallies (every 5 s): the all-time totals, which the backfill leaves alone."""
    return sum(read_totals(client.redis, client.keys).values()) > 0


def shoot(out: Path, page_path: str) -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (dev extra; this is a script)

    redis_client = redis.Redis.from_url(REDIS_URL)
    _clean(redis_client)
    demo = Demo()
    client = Client(NAMESPACE, redis_client)
    try:
        populate(demo, client)
        if page_path == "charts":
            backfill_history(redis_client, client)
            wait_until(lambda: tallies_written(client), timeout=30, what="the pools' tallies")
        with (
            tempfile.TemporaryDirectory() as scratch,
            ServedDashboard(REDIS_URL, NAMESPACE, Path(scratch) / "web.log") as served,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900}, color_scheme="light")
            page.goto(served.url + page_path)
            page.wait_for_selector("#live-status:has-text('updated')")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        demo.release.set()
        demo.web.stop()
        demo.billing.stop()
        _clean(redis_client)
    print(f"wrote {out}")


def _clean(redis_client: redis.Redis) -> None:
    keys = list(redis_client.scan_iter(match=f"{NAMESPACE}:*", count=1000))
    if keys:
        redis_client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/dashboard.png", type=Path)
    parser.add_argument(
        "--page", default="", help="page to shoot: '' (overview), workers, scheduled, retry, dead, charts"
    )
    args = parser.parse_args()
    logging.getLogger("workq").setLevel(logging.CRITICAL)  # the demo's failures are on purpose
    shoot(args.out, args.page)


if __name__ == "__main__":
    main()
