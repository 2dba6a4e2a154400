"""workq.otel without its extra installed: refused at import with the command that fixes it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_it_without_opentelemetry_says_what_to_install() -> None:
    hide_opentelemetry = "import sys; sys.modules['opentelemetry'] = None; import workq.otel"
    result = subprocess.run(
        [sys.executable, "-c", hide_opentelemetry], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "workq.errors.WorkqError: tracing needs opentelemetry-api: pip install 'workq-redis[otel]'" in result.stderr
