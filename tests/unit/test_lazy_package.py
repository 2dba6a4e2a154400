"""`workq`'s public names are imported on first use: the pytest plugin, which every pytest run loads wherever workq
is installed, costs no redis-py import, and every public name still resolves to its class."""

from __future__ import annotations

import subprocess
import sys

import workq


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def test_every_public_name_resolves_to_the_object_of_its_module() -> None:
    assert sorted(workq._HOMES) == sorted(workq.__all__)
    for name, home in workq._HOMES.items():
        assert getattr(workq, name) is getattr(sys.modules[home], name), name
    assert set(workq.__all__) <= set(dir(workq))


def test_loading_the_pytest_plugin_imports_neither_redis_nor_the_testing_kit() -> None:
    loaded = run_python(
        "import sys, workq.pytest_plugin; print(sorted(m for m in ('redis', 'fakeredis', 'workq.testing') "
        "if m in sys.modules))"
    )
    assert loaded == "[]"


def test_star_import_and_submodule_attributes_still_work() -> None:
    assert run_python("from workq import *; import workq; print(WorkerPool.__name__, workq.job.Job is Job)") == (
        "WorkerPool True"
    )
