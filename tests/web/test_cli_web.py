"""`workq web` as users run it: served by waitress in a subprocess, one-line failures, and no Flask needed for
the rest of `workq`."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from web.harness import ServedDashboard
from workq.cli.web import MISSING_EXTRA, is_loopback, url

UNREACHABLE = "redis://127.0.0.1:1/0"
WITHOUT_FLASK = (
    "import sys; sys.modules['flask'] = None; from workq.cli import main; raise SystemExit(main(sys.argv[1:]))"
)


def run(*argv: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code, *argv] if code else [sys.executable, "-m", "workq", *argv]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)


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
    assert "pip install 'workq[web]'" in MISSING_EXTRA
    helped = run("--help", code=WITHOUT_FLASK)
    assert helped.returncode == 0 and "web" in helped.stdout
    queues = run("queues", "--redis-url", UNREACHABLE, code=WITHOUT_FLASK)
    assert queues.returncode == 1 and "cannot reach Redis" in queues.stderr


def test_loopback_detection_and_urls() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.168.1.4", "jobs.example.com"))
    assert url("127.0.0.1", 5040) == "http://127.0.0.1:5040/" and url("::1", 80) == "http://[::1]:80/"
