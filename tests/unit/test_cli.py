"""The CLI's in-process parts: finding the WorkerPool at MODULE:ATTR and refusing bad usage with exit status 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from workq.cli import EXIT_USAGE, UsageError, load_pool, main
from workq.worker_pool import WorkerPool

APP = textwrap.dedent(
    """
    import fakeredis
    from workq import WorkerPool

    pool = WorkerPool("cli-test", fakeredis.FakeRedis(server=fakeredis.FakeServer()), concurrency=1)

    class jobs:
        pool = pool

    def make_pool():
        return pool

    def needs_args(x):
        return pool

    not_a_pool = 42
    """
)


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"cli_app_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize("attr", ["pool", "jobs.pool", "make_pool"])
def test_load_pool_finds_a_pool_an_attribute_path_or_a_factory(app_module: str, attr: str) -> None:
    assert isinstance(load_pool(f"{app_module}:{attr}"), WorkerPool)


@pytest.mark.parametrize(
    ("attr", "message"),
    [("missing", "no attribute"), ("not_a_pool", "not a workq.WorkerPool"), ("needs_args", "not a workq.WorkerPool")],
)
def test_load_pool_refuses_what_is_not_a_pool(app_module: str, attr: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_pool(f"{app_module}:{attr}")


@pytest.mark.parametrize("target", ["no_colon", ":pool", "module:"])
def test_load_pool_needs_module_colon_attr(target: str) -> None:
    with pytest.raises(UsageError, match="MODULE:ATTR"):
        load_pool(target)


def test_load_pool_reports_a_missing_module() -> None:
    with pytest.raises(UsageError, match="cannot import"):
        load_pool("workq_no_such_module_anywhere:pool")


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["enqueue", "x", "--args", "[1]"], "JSON object"),
        (["enqueue", "x", "--args", "{nope"], "not valid JSON"),
        (["enqueue", "x", "--in", "nan"], "seconds must be a finite number"),
        (["enqueue", "a:b", "--redis-url", "redis://127.0.0.1:1/0"], "a:b"),
    ],
)
def test_bad_enqueue_usage_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("workq: ") and message in err
    assert err.count("\n") == 1
