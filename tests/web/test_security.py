"""What keeps the dashboard safe to leave open: CSRF on every POST, POST-only changes, optional token auth, the
Host check, no open redirect, and the security headers on every response."""

from __future__ import annotations

import base64
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from web.sample_jobs import CSRF, Placed
from workq import Client
from workq.web import create_app
from workq.web.security import LOOPBACK_HOSTS, SECURITY_HEADERS, authorized, host_name, is_return_path

TOKEN = "s3cret-tøken"
SAMPLE_VALUES = {"died_at": 1, "retry_at": 1, "run_at": 1, "job_id": "abc", "job_name": "email"}


def post_routes() -> list[str]:
    """A URL for every POST route the app has, so a route added later is covered without editing this test."""
    app = create_app(Client("web-routes", "redis://127.0.0.1:1/0"), csrf_token=CSRF)
    adapter = app.url_map.bind("localhost")
    return sorted(
        adapter.build(rule.endpoint, {name: SAMPLE_VALUES[name] for name in rule.arguments})
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ())
    )


POST_ROUTES = post_routes()


def test_every_state_change_of_gocraft_work_s_ui_is_a_post_route() -> None:
    assert POST_ROUTES == [
        "/api/cancel",
        "/api/cancel/abc",
        "/api/delete_all_dead_jobs",
        "/api/delete_dead_job",
        "/api/delete_dead_job/1/abc",
        "/api/delete_queued_job",
        "/api/delete_queued_job/email/abc",
        "/api/delete_retry_job",
        "/api/delete_retry_job/1/abc",
        "/api/delete_scheduled_job",
        "/api/delete_scheduled_job/1/abc",
        "/api/pause",
        "/api/pause/email",
        "/api/purge",
        "/api/purge/email",
        "/api/retry_all_dead_jobs",
        "/api/retry_dead_job",
        "/api/retry_dead_job/1/abc",
        "/api/unpause",
        "/api/unpause/email",
    ]


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"data": {"csrf_token": "wrong"}},
        {"headers": {"X-CSRF-Token": "wrong"}},
        {"data": {"csrf_token": ""}},
        {"headers": {"X-CSRF-Token": "tøken"}},
        {"data": {"csrf_token": CSRF.upper()}},
    ],
    ids=["none", "wrong-form", "wrong-header", "empty", "non-ascii", "case"],
)
def test_every_post_without_the_csrf_token_is_refused_with_403(
    web: FlaskClient, client: Client, placed: Placed, path: str, credentials: dict[str, dict[str, str]]
) -> None:
    response = web.post(path, **credentials)  # type: ignore[arg-type]
    assert response.status_code == 403, response.get_data(as_text=True)
    assert "CSRF" in response.get_json()["error"]
    assert client.dead_jobs()[1] == 1 and not client.is_paused("email"), "nothing changed"
    assert client.queued_jobs("email")[1] == 1, "nothing purged"


def test_a_form_carrying_the_token_passes_the_csrf_check(web: FlaskClient, placed: Placed) -> None:
    assert web.post("/api/pause/email", data={"csrf_token": CSRF}).status_code == 200
    assert web.post("/api/unpause/email", headers={"X-CSRF-Token": CSRF}).status_code == 200


@pytest.mark.parametrize("path", POST_ROUTES)
def test_get_on_a_post_route_is_405_and_changes_nothing(
    web: FlaskClient, client: Client, placed: Placed, path: str
) -> None:
    response = web.get(path, headers={"X-CSRF-Token": CSRF})
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    assert client.dead_jobs()[1] == 1 and not client.is_paused("email")


@pytest.fixture
def guarded(client: Client) -> FlaskClient:
    return create_app(client, auth_token=TOKEN, csrf_token=CSRF).test_client()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", ["/", "/dead", "/api/queues", "/api/stats", "/static/dashboard.css"])
def test_with_a_token_every_request_needs_it(guarded: FlaskClient, path: str) -> None:
    response = guarded.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert guarded.get(path, headers=basic("anyone", "wrong")).status_code == 401
    assert guarded.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get(path, headers={"Authorization": "Basic !!not-base64"}).status_code == 401
    assert guarded.get(path, headers=basic("anyone", TOKEN)).status_code == 200
    assert guarded.get(path, headers=basic("", TOKEN)).status_code == 200
    assert guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_api_401_is_json_and_a_post_needs_auth_and_csrf(guarded: FlaskClient, placed: Placed) -> None:
    refused = guarded.post("/api/pause/email", headers={"X-CSRF-Token": CSRF})
    assert refused.status_code == 401 and "WORKQ_WEB_TOKEN" in refused.get_json()["error"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.post("/api/pause/email", headers=bearer).status_code == 403
    assert guarded.post("/api/pause/email", headers={**bearer, "X-CSRF-Token": CSRF}).status_code == 200


def test_the_token_defaults_to_workq_web_token(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKQ_WEB_TOKEN", TOKEN)
    web = create_app(client).test_client()
    assert web.get("/api/queues").status_code == 401
    assert web.get("/api/queues", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_a_token_no_auth_is_asked(web: FlaskClient) -> None:
    assert web.get("/api/queues").status_code == 200


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/", "get"),
        ("/api/queues", "get"),
        ("/static/dashboard.js", "get"),
        ("/nowhere", "get"),
        ("/api/pause/email", "get"),
        ("/api/pause/email", "post"),
        ("/dead?page=0", "get"),
    ],
)
def test_every_response_carries_the_security_headers(web: FlaskClient, path: str, method: str) -> None:
    response = getattr(web, method)(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    response.close()


def test_pages_hold_no_inline_script_or_style(web: FlaskClient, placed: Placed) -> None:
    for path in ["/", "/workers", "/scheduled", "/retry", "/dead"]:
        text = web.get(path).get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\bsrc=)", text) == [], f"inline <script> on {path}"
        assert " style=" not in text and "<style" not in text, f"inline style on {path}"
        assert re.search(r"<[a-z][^>]*\son[a-z]+=", text) is None, f"inline event handler on {path}"
        assert "http://" not in text.replace("http-equiv", "") and "https://" not in text, "no external assets"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5040", "127.0.0.2", "localhost.evil.example"])
def test_a_loopback_app_refuses_foreign_host_headers(app: Flask, host: str) -> None:
    response = app.test_client().get("/api/queues", headers={"Host": host})
    assert response.status_code == 400 and "does not answer to host" in response.get_json()["error"]


@pytest.mark.parametrize("host", ["localhost", "localhost:5040", "127.0.0.1:5040", "[::1]:5040", "LOCALHOST"])
def test_a_loopback_app_answers_to_loopback_names(app: Flask, host: str) -> None:
    assert app.test_client().get("/api/queues", headers={"Host": host}).status_code == 200


def test_the_host_check_never_turns_off(client: Client) -> None:
    default = create_app(client, csrf_token=CSRF).test_client()
    assert default.get("/api/queues", headers={"Host": "jobs.internal.example:8080"}).status_code == 400
    assert default.get("/api/queues", headers={"Host": "localhost:5040"}).status_code == 200
    named = create_app(client, csrf_token=CSRF, allowed_hosts=["jobs.internal.example"]).test_client()
    assert named.get("/api/queues", headers={"Host": "jobs.internal.example:8080"}).status_code == 200
    assert named.get("/api/queues", headers={"Host": "localhost"}).status_code == 400


@pytest.mark.parametrize("back", ["//evil.example/", "https://evil.example/", "/\\evil.example", "/dead?page=2&x=1"])
def test_a_form_cannot_redirect_elsewhere_and_is_refused_before_acting(
    web: FlaskClient, client: Client, placed: Placed, back: str
) -> None:
    response = web.post("/api/pause/email", data={"csrf_token": CSRF, "next": back})
    assert response.status_code == 400 and not client.is_paused("email")


def test_helpers() -> None:
    assert host_name("[::1]:5040") == "::1" and host_name("Example.ORG:80") == "example.org"
    assert host_name("localhost") == "localhost"
    assert set(LOOPBACK_HOSTS) == {"localhost", "127.0.0.1", "::1"}
    assert authorized("Bearer t", "t") and authorized("bearer  t", "t") and not authorized("Bearer t2", "t")
    assert authorized(basic("u", "p:with:colons")["Authorization"], "p:with:colons")
    assert not authorized(None, "t") and not authorized("Digest t", "t") and not authorized("Basic", "t")
    assert is_return_path("/") and is_return_path("/dead?page=3") and is_return_path("/prefix/retry")
    assert not is_return_path("//evil") and not is_return_path("http://evil") and not is_return_path("dead")
