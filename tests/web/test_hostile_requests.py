"""Requests an attacker's page can make: reading a refused page for the CSRF token, posting from another site,
job names and ids that would turn a button into another action, oversized bodies, and non-ASCII tokens."""

from __future__ import annotations

import base64
import itertools

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from web.forms import row_form
from web.sample_jobs import CSRF, Placed, failed_job, file_job
from workq import Client, Enqueuer
from workq.web import create_app
from workq.web.app import MAX_REQUEST_BYTES
from workq.web.security import SECURITY_HEADERS, csrf_cookie_name

TOKEN = "s3cret-tøken€"
HOSTILE_NAMES = [
    "x/../../delete_all_dead_jobs",
    "../delete_all_dead_jobs",
    "..",
    ".",
    "%2e%2e",
    "a/b",
    "/leading",
    "x?next=//evil#frag",
    "x\\..\\..\\retry_all_dead_jobs",
    "é/ü",
]
HOSTILE_IDS = ["../../delete_all_dead_jobs", "x/../../../retry_all_dead_jobs", "..", "%2F..%2F", "a b/c?d#e"]


def dead_count(client: Client) -> int:
    return client.dead_jobs()[1]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Host": "rebind.example:5040"}, 400), ({"Host": "127.0.0.1.nip.io"}, 400)],
)
@pytest.mark.parametrize("path", ["/", "/dead", "/api/queues", "/nowhere"])
def test_a_foreign_host_page_carries_no_token_namespace_or_cookie(
    web: FlaskClient, client: Client, path: str, headers: dict[str, str], status: int
) -> None:
    response = web.get(path, headers={**headers, "Accept": "text/html"})
    text = response.get_data(as_text=True)
    assert response.status_code == status
    assert CSRF not in text and 'name="csrf-token"' not in text and client.namespace not in text
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("path", ["/", "/dead", "/api/queues", "/nowhere"])
def test_a_page_refused_for_want_of_credentials_carries_no_token(client: Client, path: str) -> None:
    guarded = create_app(client, auth_token=TOKEN, csrf_token=CSRF).test_client()
    response = guarded.get(path)
    assert response.status_code == 401
    assert CSRF not in response.get_data(as_text=True) and "Set-Cookie" not in response.headers
    assert guarded.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401


@pytest.mark.parametrize("auth_token", [None, TOKEN])
def test_no_refused_request_of_any_method_path_or_body_gets_the_token(client: Client, auth_token: str | None) -> None:
    """Every combination of a refused Host (or, with a token, missing credentials), method, path and body — the
    body too large, or carrying the token itself — answers without the token, its cookie or the namespace."""
    web = create_app(client, auth_token=auth_token, csrf_token=CSRF).test_client()
    hosts = ["rebind.example", "rebind.example:5040", "127.0.0.1.nip.io", "localhost.", "[::2]"]
    if auth_token is not None:
        hosts.append("127.0.0.1:5040")  # the right Host, no credentials
    methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"]
    paths = ["/", "/dead", "/nowhere", "/api/dead_jobs", "/api/delete_all_dead_jobs", "/static/dashboard.js", "//"]
    bodies = [None, b"x" * (MAX_REQUEST_BYTES + 1), b"next=/dead&csrf_token=" + CSRF.encode()]
    leaks = []
    for host, method, path, body in itertools.product(hosts, methods, paths, bodies):
        response = web.open(path, method=method, headers={"Host": host}, data=body)
        text = response.get_data(as_text=True)
        if CSRF in text or client.namespace in text or "Set-Cookie" in response.headers or response.status_code >= 500:
            leaks.append(f"{method} {host} {path}: {response.status_code}")
    assert leaks == [], f"{len(leaks)} of {len(hosts) * len(methods) * len(paths) * len(bodies)}"


def test_only_a_page_that_passed_every_check_hands_out_the_token_and_its_cookie(web: FlaskClient) -> None:
    response = web.get("/dead")
    assert f'<meta name="csrf-token" content="{CSRF}">' in response.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(csrf_cookie_name(CSRF) + "=") and "SameSite=Strict" in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize(
    "browser_headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://evil.example"},
        {"Origin": "http://localhost:5041"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    ],
)
def test_a_cross_site_browser_post_is_refused_even_with_the_token_and_cookie(
    web: FlaskClient, client: Client, placed: Placed, browser_headers: dict[str, str]
) -> None:
    web.get("/dead")  # the browser holds the cookie
    response = web.post(
        "/api/delete_all_dead_jobs",
        data={"csrf_token": CSRF},
        headers={"Host": "localhost", **browser_headers},
    )
    assert response.status_code == 403 and "refused" in response.get_json()["error"]
    assert dead_count(client) == 1


def test_a_same_origin_browser_post_needs_the_cookie_a_script_does_not(
    app: Flask, client: Client, placed: Placed
) -> None:
    browser_headers = {"Host": "localhost:5040", "Origin": "http://localhost:5040", "Sec-Fetch-Site": "same-origin"}
    fresh = app.test_client()
    refused = fresh.post("/api/pause/email", data={"csrf_token": CSRF}, headers=browser_headers)
    assert refused.status_code == 403 and "cookie" in refused.get_json()["error"] and not client.is_paused("email")
    fresh.get("/", headers={"Host": "localhost:5040"})
    assert fresh.post("/api/pause/email", data={"csrf_token": CSRF}, headers=browser_headers).status_code == 200
    script = app.test_client()  # curl: no Origin, no Fetch Metadata, no cookie
    assert script.post("/api/unpause/email", headers={"X-CSRF-Token": CSRF}).status_code == 200


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_queue_s_button_acts_on_that_queue_whatever_its_name(
    web: FlaskClient, client: Client, placed: Placed, *, redis_client: redis.Redis, namespace: str, name: str
) -> None:
    Enqueuer(namespace, redis_client).enqueue(name, {})
    form = row_form(web.get("/").get_data(as_text=True), name, "Pause")
    assert form.action == "/api/pause" and form.fields["job_name"] == name
    assert form.submit(web).status_code == 303
    assert client.is_paused(name) and dead_count(client) == 1 and not client.is_paused("email")
    resume = row_form(web.get("/").get_data(as_text=True), name, "Resume")
    assert resume.submit(web).status_code == 303 and not client.is_paused(name)


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
@pytest.mark.parametrize("button", ["Retry", "Delete"])
def test_a_dead_job_s_buttons_act_on_that_job_whatever_its_id(
    web: FlaskClient,
    client: Client,
    placed: Placed,
    *,
    redis_client: redis.Redis,
    namespace: str,
    job_id: str,
    button: str,
) -> None:
    hostile = failed_job("email", placed.now, fails=4)
    hostile.id = job_id
    file_job(redis_client, namespace, "dead", hostile, placed.now - 60)
    form = row_form(web.get("/dead").get_data(as_text=True), job_id, button)
    assert "/" not in form.action.removeprefix("/api/"), "the id is in the body, not the URL"
    assert form.submit(web).status_code == 303
    assert [job.id for job in client.dead_jobs()[0]] == [placed.dead.id], "only the hostile job left the dead set"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/pause/x/../../delete_all_dead_jobs", 200),  # routed as it is: pauses that very name
        ("/api/pause//x", 404),  # no slash merging, no redirect to /api/pause/x
        ("/api/delete_all_dead_jobs/", 404),
        ("/api/delete_all_dead_jobs/x", 404),
        ("/api/pause", 400),  # no name in the path or the body
        ("/api/retry_dead_job/1e3/abc", 400),
    ],
)
def test_the_server_routes_only_exact_paths(
    web: FlaskClient, client: Client, placed: Placed, path: str, status: int
) -> None:
    response = web.post(path, headers={"X-CSRF-Token": CSRF})
    assert response.status_code == status, response.get_data(as_text=True)
    assert "Location" not in response.headers and dead_count(client) == 1
    if status == 200:
        assert client.is_paused("x/../../delete_all_dead_jobs")


@pytest.mark.parametrize(
    "request_args",
    [
        {"data": {"csrf_token": CSRF, "x": "a" * (MAX_REQUEST_BYTES + 1)}},
        {"data": b"a" * (MAX_REQUEST_BYTES + 1), "headers": {"X-CSRF-Token": CSRF}},
        {"data": {"csrf_token": CSRF, "next": "/dead", "x": "a" * (MAX_REQUEST_BYTES + 1)}},
    ],
    ids=["form", "raw", "form-with-next"],
)
def test_an_oversized_body_is_a_413_with_the_security_headers(
    web: FlaskClient, client: Client, placed: Placed, request_args: dict[str, object]
) -> None:
    response = web.post("/api/delete_all_dead_jobs", **request_args)  # type: ignore[arg-type]
    assert response.status_code == 413
    assert "too large" in response.get_json()["error"]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert dead_count(client) == 1


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_non_ascii_token_works_as_bearer_as_it_does_with_basic(client: Client, encoding: str) -> None:
    guarded = create_app(client, auth_token="tøken", csrf_token=CSRF).test_client()
    wire = "tøken".encode(encoding).decode("latin-1")  # what WSGI hands over for those bytes
    assert guarded.get("/api/queues", headers={"Authorization": f"Bearer {wire}"}).status_code == 200
    basic = base64.b64encode("me:tøken".encode()).decode()
    assert guarded.get("/api/queues", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    euro = create_app(client, auth_token=TOKEN, csrf_token=CSRF).test_client()
    sent = TOKEN.encode().decode("latin-1")
    assert euro.get("/api/queues", headers={"Authorization": f"Bearer {sent}"}).status_code == 200
    assert euro.get("/api/queues", headers={"Authorization": "Bearer s3cret-t?ken?"}).status_code == 401
