"""Figure lines the slow suites print (reliability, topologies, the mixed fleet), kept by section and repeated in
the terminal summary — also under pytest-xdist, whose workers hand theirs to the controller at the end."""

from __future__ import annotations

SECTIONS: dict[str, list[str]] = {}
"""Section title → its figure lines, in the order they were recorded (per worker, then by worker)."""


def record(section: str, line: str) -> None:
    """Print `line` now and keep it for the terminal summary under `section`."""
    print(line, flush=True)
    SECTIONS.setdefault(section, []).append(line)
