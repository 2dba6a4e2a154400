"""The dashboard as users run it — `workq web` in a subprocess — and Debian's chromium driven by Playwright.
Shared by the browser tests and the screenshot script."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from support import wait_until

CHROMIUM = "/usr/bin/chromium"
REBIND_NAME = "rebind.test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # DNS rebinding, simulated: this name resolves to the dashboard's loopback address, as an attacker's would
    f"--host-resolver-rules=MAP {REBIND_NAME} 127.0.0.1",
]
SERVED_URL = re.compile(r"dashboard of namespace .* at (http://\S+)")


class ServedDashboard:
    """`workq web --port 0` on a namespace; `url` once it listens, `stop()` sends SIGTERM and returns the status."""

    def __init__(
        self,
        redis_url: str,
        namespace: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.log_path = log_path
        self._log_file = log_path.open("w")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "workq", "web", "--port", "0"),
                *("--redis-url", redis_url, "--namespace", namespace, *options),
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            self.url = wait_until(self._served_url, timeout=20, what="`workq web` to log the URL it serves")
        except BaseException:
            self.process.kill()
            self.process.wait(10)
            self._log_file.close()
            raise

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def _served_url(self) -> str | None:
        match = SERVED_URL.search(self.log)
        if match is None and self.process.poll() is not None:
            raise AssertionError(f"`workq web` exited with {self.process.returncode}:\n{self.log}")
        return match.group(1) if match else None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(10)
        finally:
            self._log_file.close()

    def __enter__(self) -> ServedDashboard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.stop()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when Playwright and Debian's chromium are both installed."""
    try:
        import playwright.sync_api  # noqa: F401, PLC0415 (only asking whether it is installed)
    except ImportError:
        return "Playwright for Python is not installed: pip install -e '.[dev]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: apt-get install chromium"
    return None
