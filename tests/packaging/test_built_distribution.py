"""What `python -m build` makes of the checkout, as PyPI would receive it: the wheel ships every module, Lua script,
template and static file and `py.typed` under the distribution name `workq-redis`, with complete metadata, and the
sdist carries what a packager needs to rebuild and test it. Built offline (no isolated env: the dev venv's
setuptools), so it runs wherever the tests do; .ci/release builds the same way with isolation and installs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest

from workq.distribution import DISTRIBUTION_NAME

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "workq"
VERSION = metadata.version(DISTRIBUTION_NAME)  # pyproject's, as the dev venv's editable install read it
EXTRAS = {"web", "metrics", "otel", "testing", "hiredis"}
BY_PRODUCTS = shutil.ignore_patterns(
    ".git", ".venv", ".bench-venv*", "*.egg-info", "build", "dist", "__pycache__", ".*_cache"
)
"""Left out of the copy built from: a stale `*.egg-info/SOURCES.txt` would put files in the wheel that
pyproject's package-data no longer lists, hiding the very omission these tests look for."""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("dist")
    checkout = tmp_path_factory.mktemp("checkout") / "workq"
    shutil.copytree(ROOT, checkout, ignore=BY_PRODUCTS)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(checkout)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return outdir


@pytest.fixture(scope="module")
def wheel(dist: Path) -> zipfile.ZipFile:
    [path] = dist.glob("*.whl")
    assert path.name == f"workq_redis-{VERSION}-py3-none-any.whl"
    return zipfile.ZipFile(path)


def shipped_source_files() -> set[str]:
    """Every file of the checkout's package that an import needs: modules, Lua, templates, static files, py.typed."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (path.suffix in {".py", ".lua", ".html"} or path.name == "py.typed" or "static" in path.parts)
    }


def wheel_metadata(wheel: zipfile.ZipFile) -> Message:
    dist_info = f"workq_redis-{VERSION}.dist-info"
    return Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())


def test_the_wheel_ships_every_module_script_template_and_static_file_and_py_typed(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = shipped_source_files()
    for must in ("workq/py.typed", "workq/scripts/fetch.lua", "workq/web/templates/base.html"):
        assert must in expected, f"{must} left the source tree: update this test"
    assert {name for name in expected if "/static/" in name} >= {"workq/web/static/dashboard.js"}
    assert sorted(expected - names) == [], "files the installed package would miss"
    assert not [name for name in names if not name.startswith(("workq/", "workq_redis-"))], "stray top-level files"


def test_the_wheel_metadata_names_the_distribution_and_is_complete(wheel: zipfile.ZipFile) -> None:
    meta = wheel_metadata(wheel)
    assert (meta["Name"], meta["Version"]) == (DISTRIBUTION_NAME, VERSION)
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    assert meta["Requires-Python"] == ">=3.10"
    assert "Typing :: Typed" in meta.get_all("Classifier", [])
    urls = {url.split(",")[0] for url in meta.get_all("Project-URL", [])}
    assert urls >= {"Repository", "Documentation", "Changelog"}
    assert set(meta.get_all("Provides-Extra", [])) >= EXTRAS
    assert meta["Description-Content-Type"].startswith("text/markdown")
    assert "pip install workq-redis" in meta.get_payload(), "PyPI's page shows the README: it names the right install"
    dist_info = f"workq_redis-{VERSION}.dist-info"
    assert "MIT License" in wheel.read(f"{dist_info}/licenses/LICENSE").decode()
    entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert "workq = workq.cli:main" in entry_points and "workq = workq.pytest_plugin" in entry_points


def test_the_sdist_carries_license_changelog_docs_examples_and_tests(dist: Path) -> None:
    [path] = dist.glob("*.tar.gz")
    prefix = f"workq_redis-{VERSION}/"
    with tarfile.open(path) as sdist:
        names = {name.removeprefix(prefix) for name in sdist.getnames()}
    for must in ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "workq/scripts/fetch.lua",
                 "workq/web/static/dashboard.css", "examples/quickstart/run.py", "tests/conftest.py",
                 "docs/wire-format.md"):  # fmt: skip
        assert must in names, must
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
