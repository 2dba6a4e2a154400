"""The name workq is published under on PyPI. The import package and the command are `workq`, but the PyPI name
`workq` belongs to an unrelated project, so every install hint must name this distribution instead."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION_NAME = "workq-redis"


def install_hint(extra: str) -> str:
    """The pip command that installs workq with one of its extras (`web`, `metrics`, `otel`, `testing`, …)."""
    return f"pip install '{DISTRIBUTION_NAME}[{extra}]'"


def installed_version() -> str:
    """The version in the metadata of the installed distribution: `workq-redis` first, then whichever other
    distribution provides the `workq` package (a fork, a renamed build). Only that fallback reads every installed
    distribution's metadata (tens of milliseconds), so the usual case stays a single lookup."""
    try:
        return metadata.version(DISTRIBUTION_NAME)
    except metadata.PackageNotFoundError:
        pass
    for distribution in metadata.packages_distributions().get("workq", []):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "(version unknown: the workq package is not installed, only on the path)"
