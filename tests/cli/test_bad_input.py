"""Bad input to any `workq` command is one line on stderr and exit 1 (2 for usage), never a traceback, and Redis is
not touched; `--log-level DEBUG` adds the traceback for whoever has to dig. A bug in workq keeps its traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import BAD_REDIS_URLS
from workq.cli import EXIT_FAILURE, EXIT_USAGE, main, views

COMMANDS = [
    ["enqueue", "quick"],
    ["enqueue", "quick", "--in", "60", "--unique"],
    ["pause", "quick"],
    ["unpause", "quick"],
    ["retry-dead", "--all"],
    ["retry-dead", "--reason", "unknown job"],
    ["delete-dead", "1", "some-id"],
    ["queues"],
    ["workers", "--json"],
    ["scheduled"],
    ["dead"],
    ["worker", "worker_app:pool"],
]
BROKEN_APPS = {
    "syntax_error": ("def broken(:\n", "pool", "SyntaxError: invalid syntax"),
    "raises_at_import": ("raise RuntimeError('no config file')\n", "pool", "RuntimeError: no config file"),
    "missing_dependency": ("import workq_no_such_dependency\n", "pool", "ModuleNotFoundError: No module named"),
    "factory_raises": (
        "def make_pool():\n    raise KeyError('DATABASE_URL')\n",
        "make_pool",
        "make_pool() failed: KeyError: 'DATABASE_URL'",
    ),
}


@pytest.fixture
def apps_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # for worker_app:pool


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize("redis_url", BAD_REDIS_URLS)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_refuses_a_redis_url_it_cannot_use_in_one_line(
    command: list[str], redis_url: str, apps_on_path: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--redis-url", redis_url]) in (EXIT_FAILURE, EXIT_USAGE)
    err = capsys.readouterr().err
    assert err.startswith("workq: ") and err.count("\n") == 1, err


@pytest.mark.usefixtures("root_logging")
def test_a_bug_in_workq_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def buggy(_args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(views, "run_queues", buggy)
    with pytest.raises(KeyError, match="a bug"):
        main(["queues"])


def run_workq(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workq", *argv, "--redis-url", "redis://127.0.0.1:1/0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.mark.parametrize("broken", BROKEN_APPS)
def test_a_worker_module_that_fails_to_load_is_one_line_and_exit_1(broken: str, tmp_path: Path) -> None:
    source, attr, words = BROKEN_APPS[broken]
    (tmp_path / f"{broken}.py").write_text(source)
    result = run_workq(tmp_path, "worker", f"{broken}:{attr}")
    assert result.returncode == EXIT_FAILURE
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("workq: "), result.stderr
    assert words in result.stderr and "--log-level DEBUG shows the traceback" in result.stderr


def test_log_level_debug_adds_the_traceback_of_the_users_code(tmp_path: Path) -> None:
    (tmp_path / "raises_at_import.py").write_text(BROKEN_APPS["raises_at_import"][0])
    result = run_workq(tmp_path, "worker", "raises_at_import:pool", "--log-level", "DEBUG")
    assert result.returncode == EXIT_FAILURE
    first, *rest = result.stderr.splitlines()
    assert first.startswith("workq: importing 'raises_at_import' failed: RuntimeError: no config file")
    traceback = "\n".join(rest)
    assert "Traceback (most recent call last)" in traceback
    assert 'raises_at_import.py", line 1' in traceback and "raise RuntimeError('no config file')" in traceback
