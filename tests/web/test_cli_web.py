"""`workq web` as users run it: served by waitress in a subprocess, one-line failures, and no Flask needed for
the rest of `workq`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import BAD_REDIS_URLS
from web.harness import ServedDashboard
from workq.cli.web import MISSING_EXTRA, allowed_hosts, is_loopback, url

UNREACHABLE = "redis://127.0.0.1:1/0"
WITHOUT_FLASK = (
    "import sys; sys.modules['flask'] = None; from workq.cli import main; raise SystemExit(main(sys.argv[1:]))"
)


def run(*argv: str, code: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code, *argv] if code else [sys.executable, "-m", "workq", *argv]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=60, env=environment)


def test_workq_web_serves_the_dashboard_and_stops_on_sigterm(redis_url: str, namespace: str, tmp_path: Path) -> None:
    with ServedDashboard(redis_url, namespace, tmp_path / "web.log") as served:
        assert served.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(served.url, timeout=10) as response:
            body = response.read().decode()
            assert response.status == 200 and response.headers["X-Frame-Options"] == "DENY"
        assert f"<title>Overview · workq · {namespace}</title>" in body
        with urllib.request.urlopen(served.url + "api/queues", timeout=10) as response:
            assert response.read() == b"[]\n"
        assert served.stop() == 0
    assert f"dashboard of namespace {namespace} (Redis 127.0.0.1:6379/0) at {served.url}" in served.log
    assert "dashboard stopped" in served.log


def test_an_unreachable_redis_is_one_line_and_exit_1() -> None:
    result = run("web", "--redis-url", UNREACHABLE, "--port", "0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("workq: cannot reach Redis at 127.0.0.1:1/0")


def test_bad_port_is_a_usage_error() -> None:
    result = run("web", "--port", "70000")
    assert result.returncode == 2 and "--port must be 0-65535" in result.stderr


def test_without_flask_workq_web_says_what_to_install_and_the_rest_still_works() -> None:
    result = run("web", "--redis-url", UNREACHABLE, code=WITHOUT_FLASK)
    assert (result.returncode, result.stderr.strip()) == (1, MISSING_EXTRA)
    assert "pip install 'workq-redis[web]'" in MISSING_EXTRA
    helped = run("--help", code=WITHOUT_FLASK)
    assert helped.returncode == 0 and "web" in helped.stdout
    queues = run("queues", "--redis-url", UNREACHABLE, code=WITHOUT_FLASK)
    assert queues.returncode == 1 and "cannot reach Redis" in queues.stderr


def test_loopback_detection_and_urls() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.168.1.4", "jobs.example.com"))
    assert url("127.0.0.1", 5040) == "http://127.0.0.1:5040/" and url("::1", 80) == "http://[::1]:80/"


@pytest.mark.parametrize("command", ["web", "queues", "dead"])
@pytest.mark.parametrize("redis_url", BAD_REDIS_URLS)
def test_a_redis_url_that_cannot_be_used_is_one_line_never_a_traceback(command: str, redis_url: str) -> None:
    result = (
        run(command, "--redis-url", redis_url, "--port", "0")
        if command == "web"
        else run(command, "--redis-url", redis_url)
    )
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("workq: ")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "jobs.example.com"])
def test_a_non_loopback_bind_without_a_token_refuses_to_start(host: str) -> None:
    result = run("web", "--host", host, "--port", "0", "--redis-url", UNREACHABLE)
    assert result.returncode == 2 and "WORKQ_WEB_TOKEN" in result.stderr and "--insecure" in result.stderr
    assert "cannot reach Redis" not in result.stderr, "refused before Redis is touched"


def test_insecure_is_an_explicit_choice_and_binding_errors_are_one_line_before_redis() -> None:
    insecure = run("web", "--host", "192.0.2.7", "--port", "0", "--insecure", "--redis-url", UNREACHABLE)
    assert insecure.returncode == 1 and insecure.stderr.strip().splitlines() == [
        "workq: cannot listen on http://192.0.2.7:0/: Cannot assign requested address"
    ]
    unknown = run("web", "--host", "no-such-host.invalid", "--port", "0", "--redis-url", UNREACHABLE, "--insecure")
    assert unknown.returncode == 1 and unknown.stderr.strip() == (
        "workq: cannot listen on http://no-such-host.invalid:0/: no such address or name"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run("web", "--port", str(port), "--redis-url", UNREACHABLE)
    assert taken.returncode == 1 and taken.stderr.strip() == (
        f"workq: cannot listen on http://127.0.0.1:{port}/: Address already in use"
    )


def test_a_token_no_client_could_send_is_refused_at_start() -> None:
    result = run("web", "--port", "0", "--redis-url", UNREACHABLE, env={"WORKQ_WEB_TOKEN": " padded "})
    assert result.returncode == 2 and "spaces at its ends" in result.stderr


def test_a_dashboard_on_127_0_0_2_answers_on_its_own_url_and_nowhere_else(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    with ServedDashboard(redis_url, namespace, tmp_path / "web.log", options=["--host", "127.0.0.2"]) as served:
        assert served.url.startswith("http://127.0.0.2:")
        with urllib.request.urlopen(served.url + "api/queues", timeout=10) as response:
            assert response.status == 200
        foreign = urllib.request.Request(served.url + "api/queues", headers={"Host": "rebind.test"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(foreign, timeout=10)
        assert refused.value.code == 400
    assert "answering to Host 127.0.0.1, 127.0.0.2, ::1, localhost" in served.log


def test_the_host_allow_list_takes_the_bind_address_and_configured_names() -> None:
    assert allowed_hosts("127.0.0.2", []) == ["127.0.0.1", "127.0.0.2", "::1", "localhost"]
    exposed = allowed_hosts("0.0.0.0", ["jobs.example.com"])
    assert {"jobs.example.com", "localhost", socket.gethostname()} <= set(exposed) and "0.0.0.0" not in exposed
    assert "192.0.2.7" in allowed_hosts("192.0.2.7", []) and "0.0.0.0" not in allowed_hosts("::", [])
