"""End to end in a real headless browser: Debian's chromium, driven by Playwright for Python, against `workq web`
in a subprocess and a WorkerPool running in this process. Skipped, with the reason, only where Playwright or
/usr/bin/chromium is missing."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import redis

from support import wait_until
from web.conftest import PoolStarter
from web.harness import CHROMIUM, CHROMIUM_ARGS, REBIND_NAME, ServedDashboard, chromium_missing
from web.sample_jobs import SCRIPT, cancelled_dead, failed_job, file_job, file_minute
from workq import Client, Enqueuer, Job, WorkerPool

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Request


COUNT_FETCHES = """
window.fetchCount = 0;
const realFetch = window.fetch;
window.fetch = (...args) => { window.fetchCount += 1; return realFetch(...args); };
"""


@dataclass
class Watched:
    """A page and what it did that it should not: console errors (a CSP violation is one), JS alerts, requests
    to anywhere but the dashboard."""

    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)

    def watch(self) -> Watched:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("dialog", self._dialog)
        self.page.on("request", self._request)
        return self

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"a JS {dialog.type} opened: {dialog.message}")
        dialog.dismiss()

    def _request(self, request: Request) -> None:
        if not request.url.startswith(self.base_url):
            self.problems.append(f"request outside the dashboard: {request.url}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = chromium_missing()
    if reason is not None:
        print(f"skipping the browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (installed: checked just above)

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def served(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[ServedDashboard]:
    with ServedDashboard(redis_url, namespace, tmp_path / "web.log") as dashboard:
        yield dashboard


@pytest.fixture
def page(browser: Browser, served: ServedDashboard) -> Iterator[Watched]:
    context = browser.new_context(base_url=served.url)
    watched = Watched(context.new_page(), served.url).watch()
    yield watched
    context.close()


def test_retry_a_dead_job_from_the_dead_page_and_see_it_processed(
    page: Watched,
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
    start_pool: PoolStarter,
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    started = time.perf_counter()
    handled: list[str] = []
    start_pool({"email": lambda job: handled.append(job.id)})
    now = int(time.time())
    dead = failed_job("email", now, fails=4)
    file_job(redis_client, namespace, "dead", dead, now - 5)

    page.page.goto("dead")
    row = page.page.locator(f'tr[data-job-id="{dead.id}"]')
    expect(row).to_contain_text(SCRIPT)  # shown as text: the tag is data, never markup
    expect(row).to_contain_text(f"smtp said {SCRIPT}")
    row.get_by_role("button", name="Retry").click()

    expect(row).to_have_count(0)
    expect(page.page.locator("#toast")).to_have_text(f"Requeued email {dead.id}")
    wait_until(lambda: dead.id in handled, what="the handler to run the retried job")
    wait_until(
        lambda: [entry.processed for entry in client.job_stats() if entry.job_name == "email"] == [1],
        what="the run to be counted",
    )
    assert client.dead_jobs() == ([], 0)

    page.page.goto("")
    expect(page.page.locator('tr[data-queue="email"] [data-field="processed"]')).to_have_text("1")
    expect(page.page.locator(".tab", has_text="Dead").locator(".badge")).to_have_text("0")
    assert handled == [dead.id]
    assert page.problems == []
    print(f"browser test took {time.perf_counter() - started:.2f} s")


def test_the_page_refreshes_itself_and_bulk_actions_ask_first(
    page: Watched, client: Client, redis_client: redis.Redis, namespace: str, placed_dead: list[Job]
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    page.page.clock.install()  # the refresh timer runs on Playwright's clock: no waiting for it
    page.page.add_init_script(COUNT_FETCHES)
    page.page.goto("dead")
    rows = page.page.locator("tr[data-job-id]")
    expect(rows).to_have_count(2)

    now = int(time.time())
    file_job(redis_client, namespace, "dead", failed_job("sms", now, 4), now)
    page.page.clock.run_for(5000)
    expect(rows).to_have_count(3)
    expect(page.page.locator(".tab", has_text="Dead").locator(".badge")).to_have_text("3")

    dialog = page.page.locator("#confirm-dialog")
    page.page.get_by_role("button", name="Delete all").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete all 3 dead jobs?")
    file_job(redis_client, namespace, "dead", failed_job("sms", now, 4, {"n": 4}), now)
    fetches = page.page.evaluate("window.fetchCount")
    page.page.clock.run_for(12_000)
    assert page.page.evaluate("window.fetchCount") == fetches, "no refresh while the dialog is open"
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert client.dead_jobs()[1] == 4, "cancelled: nothing deleted"
    page.page.clock.run_for(5000)
    expect(rows).to_have_count(4)

    page.page.get_by_role("button", name="Delete all").click()
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.page.locator("#toast")).to_have_text("Deleted 4 dead jobs")
    expect(rows).to_have_count(0)
    expect(page.page.locator("main")).to_contain_text("No dead jobs.")
    assert client.dead_jobs() == ([], 0)
    assert page.problems == []


def test_pause_and_resume_a_queue_from_the_overview(page: Watched, client: Client, placed_dead: list[Job]) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    page.page.goto("")
    row = page.page.locator('tr[data-queue="email"]')
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("Paused")
    assert client.is_paused("email")
    row.get_by_role("button", name="Resume").click()
    expect(row).to_contain_text("Active")
    assert not client.is_paused("email")
    assert page.problems == []


def test_without_javascript_the_buttons_still_work(
    browser: Browser, served: ServedDashboard, client: Client, placed_dead: list[Job]
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    context = browser.new_context(base_url=served.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("dead")
        first = placed_dead[0]
        page.locator(f'tr[data-job-id="{first.id}"]').get_by_role("button", name="Delete").click()
        expect(page).to_have_url(served.url + "dead")
        expect(page.locator("tr[data-job-id]")).to_have_count(1)
        assert [job.id for job in client.dead_jobs()[0]] == [placed_dead[1].id]
    finally:
        context.close()


READ_AND_POST_EVERYTHING = """async (token) => {
    const seen = [];
    for (const path of ["/", "/dead", "/workers", "/api/dead_jobs", "/api/queues", "/nowhere"]) {
        const response = await fetch(path);
        seen.push({path, status: response.status, text: await response.text()});
    }
    for (const path of ["/api/delete_all_dead_jobs", "/api/retry_all_dead_jobs", "/api/pause/email", "/api/pause"]) {
        const body = new URLSearchParams({csrf_token: token, job_name: "email"});
        const response = await fetch(path, {method: "POST", body, headers: {"X-CSRF-Token": token}});
        seen.push({path, status: response.status, text: await response.text()});
    }
    return seen;
}"""


def test_a_rebinding_page_reaches_neither_the_token_nor_any_change(
    browser: Browser, served: ServedDashboard, client: Client, placed_dead: list[Job]
) -> None:
    victim = browser.new_context(base_url=served.url)
    try:
        dashboard = victim.new_page()
        dashboard.goto("dead")
        token = dashboard.locator('meta[name="csrf-token"]').get_attribute("content")
        assert token, "the dashboard's own page carries the token"

        # The attacker's page, once its name resolves to 127.0.0.1, is same-origin with whatever answers there.
        rebound = victim.new_page()
        answer = rebound.goto(f"http://{REBIND_NAME}:{urlsplit(served.url).port}/dead")
        assert answer is not None and answer.status == 400
        seen = rebound.evaluate(READ_AND_POST_EVERYTHING, token)  # worst case: it even knows the token
        assert [entry["status"] for entry in seen] == [400] * len(seen)
        assert [entry["path"] for entry in seen if token in entry["text"]] == [], "the token never leaks"

        # A plain cross-site form post from another site, in the browser that holds the dashboard's cookie.
        form = (
            f'<form id="f" method="post" action="{served.url}api/delete_all_dead_jobs">'
            f'<input name="csrf_token" value="{token}"></form><script>document.getElementById("f").submit()</script>'
        )
        victim.route("http://attacker.test/**", lambda route: route.fulfill(content_type="text/html", body=form))
        attacker = victim.new_page()
        with attacker.expect_response(lambda response: "delete_all_dead_jobs" in response.url) as posted:
            attacker.goto("http://attacker.test/")
        assert posted.value.status == 403
        assert client.dead_jobs()[1] == 2 and not client.is_paused("email"), "nothing changed"
    finally:
        victim.close()


def test_buttons_act_on_their_own_queue_and_job_whatever_the_name_or_id(
    page: Watched, client: Client, redis_client: redis.Redis, namespace: str, placed_dead: list[Job]
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    name = "x/../../delete_all_dead_jobs"  # accepted by enqueue: Go services use `/` in names
    Enqueuer(namespace, redis_client).enqueue(name, {})
    hostile = failed_job("email", int(time.time()), 4)
    hostile.id = "../../retry_all_dead_jobs"
    file_job(redis_client, namespace, "dead", hostile, int(time.time()))

    page.page.goto("")
    row = page.page.locator(f'tr[data-queue="{name}"]')
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("Paused")
    assert client.is_paused(name) and client.dead_jobs()[1] == 3, "paused that queue; no dead job deleted"

    page.page.goto("dead")
    page.page.locator(f'tr[data-job-id="{hostile.id}"]').get_by_role("button", name="Delete").click()
    expect(page.page.locator("tr[data-job-id]")).to_have_count(2)
    assert sorted(job.id for job in client.dead_jobs()[0]) == sorted(job.id for job in placed_dead)
    assert client.peek("email") == [], "no dead job was retried either"
    assert page.problems == []


COUNT_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_the_charts_draw_the_runs_of_live_pools_and_past_minutes_under_the_strict_csp(
    page: Watched, redis_client: redis.Redis, namespace: str, start_pool: PoolStarter
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    def refuse(job: Job) -> None:
        raise RuntimeError("declined")

    pool = start_pool({"charge": lambda job: None, "refund": refuse})
    Enqueuer(namespace, redis_client).enqueue_many("charge", [{"n": n} for n in range(4)])
    Enqueuer(namespace, redis_client).enqueue("refund", {"n": 1})
    pool.drain(timeout=10)
    pool.stop()  # writes its tally
    now = int(redis_client.time()[0])
    past = {now - back * 60: (10 + back % 7, back % 3) for back in range(2, 32)}
    for minute, (processed, failed) in past.items():
        file_minute(redis_client, namespace, "charge", minute, processed=processed, failed=failed)
    file_minute(redis_client, namespace, "charge", now - 600, processed=0, failed=0, latency=42)

    page.page.add_init_script(COUNT_CSP_VIOLATIONS)
    page.page.goto("charts")
    page.page.wait_for_selector("#live-status:has-text('updated')")  # one live refresh replaced the charts too

    charge = page.page.locator('section[aria-label="charge"]')
    expect(charge.locator("figure")).to_have_count(2)
    hour = charge.locator("figure").first
    expect(hour.locator("g.chart-bar")).to_have_count(60)
    # One read of every bar in one turn of the page: the live refresh replaces the charts every few seconds, and a
    # bar read after it was replaced has no box.
    bars = hour.locator("g.chart-bar").evaluate_all(
        """bars => bars.map(bar => {
            const rect = bar.querySelector("rect.processed");
            return [bar.querySelector("title").textContent, rect ? rect.getBoundingClientRect().height : 0];
        })"""
    )
    drawn = []
    for title, height in bars:
        processed, failed = map(int, re.findall(r"(\d+) (?:processed|failed)", title))
        drawn.append((processed, failed, height))
    assert sum(processed for processed, _, _ in drawn) == 4 + sum(processed for processed, _ in past.values())
    assert sum(failed for _, failed, _ in drawn) == sum(failed for _, failed in past.values())
    assert all((height > 0) == (processed > 0) for processed, _, height in drawn), "each run drawn at its height"
    assert hour.locator("svg rect.failed").count() == sum(1 for _, failed in past.values() if failed)
    assert hour.locator("svg polyline.latency").is_visible()
    fill = hour.locator("svg rect.processed").last.evaluate("rect => getComputedStyle(rect).fill")
    assert fill not in ("", "rgb(0, 0, 0)"), "the stylesheet (served from 'self') colours the bars"
    refund = page.page.locator('section[aria-label="refund"] figure').first
    assert refund.locator("g.chart-bar title").last.text_content().endswith("0 processed, 1 failed")
    expect(page.page.locator('section[aria-label="All jobs"]')).to_have_count(1)
    assert page.page.evaluate("window.cspViolations") == []
    assert page.problems == []


@pytest.fixture
def placed_dead(redis_client: redis.Redis, namespace: str) -> list[Job]:
    """Two dead email jobs (and the email queue known, as a pool or enqueue would make it)."""
    now = int(time.time())
    jobs = [failed_job("email", now, 4, {"n": n}) for n in range(2)]
    for n, job in enumerate(jobs):
        file_job(redis_client, namespace, "dead", job, now - 10 - n)
    redis_client.sadd(f"{namespace}:known_jobs", "email")
    return jobs


def test_a_hostile_queue_s_page_deletes_and_purges_that_queue_only(
    page: Watched, client: Client, redis_client: redis.Redis, namespace: str, placed_dead: list[Job]
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    name = "x/../../delete_all_dead_jobs"
    jobs = Enqueuer(namespace, redis_client).enqueue_many(name, [{"n": n} for n in range(3)])
    Enqueuer(namespace, redis_client).enqueue("email", {})
    page.page.goto("")
    page.page.locator(f'tr[data-queue="{name}"]').get_by_role("link", name=name).click()
    expect(page.page).to_have_url(f"{page.base_url}queue?job_name=x%2F..%2F..%2Fdelete_all_dead_jobs")
    rows = page.page.locator("tr[data-job-id]")
    expect(rows).to_have_count(3)
    rows.and_(page.page.locator(f'[data-job-id="{jobs[1].id}"]')).get_by_role("button", name="Delete").click()
    expect(page.page.locator("#toast")).to_have_text(f"Deleted {name} {jobs[1].id}")
    expect(rows).to_have_count(2)
    page.page.get_by_role("button", name="Purge").click()
    dialog = page.page.locator("#confirm-dialog")
    expect(dialog).to_contain_text(f"Delete all 2 queued {name} jobs?")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.page.locator("#toast")).to_have_text("Purged 2 queued jobs")
    expect(page.page.locator("main")).to_contain_text("Nothing queued.")
    assert client.queued_jobs(name)[1] == 0 and client.queued_jobs("email")[1] == 1
    assert client.dead_jobs()[1] == 2, "no dead job was deleted"
    assert page.problems == []


def test_cancel_a_running_job_from_the_workers_page(
    page: Watched,
    client: Client,
    namespace: str,
    *,
    redis_client: redis.Redis,
    start_pool: PoolStarter,
    release: threading.Event,
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    running = threading.Event()

    def slow(job: Job) -> None:
        running.set()
        release.wait(30)

    start_pool({"slow": slow})
    job = Enqueuer(namespace, redis_client).enqueue("slow", {})
    assert running.wait(20)
    page.page.goto("workers")
    row = page.page.locator(f'tr[data-job-id="{job.id}"]')
    expect(row).to_have_count(1, timeout=20_000)  # once the worker's observation is written and the page refreshed
    row.get_by_role("button", name="Cancel").click()
    page.page.locator("#confirm-dialog").get_by_role("button", name="Confirm").click()
    expect(page.page.locator("#toast")).to_have_text(f"Cancel requested for slow {job.id}")
    assert redis_client.exists(client.keys.cancel_request(job.id)) or cancelled_dead(client, job.id)


def test_schedules_page_and_cron_ticks_apart_from_one_off_jobs(
    page: Watched, namespace: str, redis_url: str, redis_client: redis.Redis
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 (installed: the browser fixture checked)

    pool = WorkerPool(namespace, redis_url, concurrency=1)
    pool.job("report", lambda job: None)
    pool.periodically_enqueue("*/10 * * * * *", "report")
    with pool:
        wait_until(lambda: redis_client.zcard(f"{namespace}:scheduled") >= 20, what="the first cron pass")
        one_off = Enqueuer(namespace, redis_url).enqueue_in("email", 600)
        page.page.goto("")
        page.page.locator(".tab", has_text="Schedules").click()
        row = page.page.locator('tr[data-schedule="report */10 * * * * *"]')
        expect(row).to_contain_text("report")
        expect(row).to_contain_text("in ")

        page.page.locator(".tab", has_text="Scheduled").click()
        expect(page.page.locator("tr[data-job-id]")).to_have_count(1)
        expect(page.page.locator(f'tr[data-job-id="{one_off.id}"]')).to_have_count(1)
        page.page.locator(".subtab", has_text="Cron ticks").click()
        expect(page.page.locator("tr[data-job-id]")).to_have_count(20)
        expect(page.page.locator("tr[data-job-id]").first).to_contain_text("report")
    assert page.problems == []
