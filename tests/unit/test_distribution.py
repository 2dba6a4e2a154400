"""The distribution name in what workq tells users: install hints name `workq-redis` (PyPI's `workq` is another
project), and `--version` reads workq-redis's metadata even beside a stale or unrelated `workq` distribution."""

from __future__ import annotations

from importlib import metadata

import pytest

from workq import distribution
from workq.distribution import DISTRIBUTION_NAME, install_hint, installed_version


def installed(monkeypatch: pytest.MonkeyPatch, versions: dict[str, str]) -> None:
    """Pretend these distributions, all providing the `workq` package, are the installed ones."""

    def version(name: str) -> str:
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(distribution.metadata, "version", version)
    monkeypatch.setattr(distribution.metadata, "packages_distributions", lambda: {"workq": list(versions)})


def test_install_hints_name_the_distribution_on_pypi() -> None:
    assert DISTRIBUTION_NAME == "workq-redis"
    assert install_hint("web") == "pip install 'workq-redis[web]'"


def test_version_is_workq_redis_even_beside_another_workq_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, {"workq": "1.0.1", "workq-redis": "0.3.0"})  # PyPI's unrelated workq, or a stale install
    assert installed_version() == "0.3.0"


def test_version_of_a_renamed_build_is_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, {"acme-workq": "0.2.0+acme"})
    assert installed_version() == "0.2.0+acme"


def test_a_package_on_the_path_only_says_its_version_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, {})
    assert installed_version().startswith("(version unknown")
