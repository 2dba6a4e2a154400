"""README's "Testing your app" example stays true: its code block, saved as a test module of a user's project,
passes under pytest with the plugin found through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- testing-example"


def test_the_readme_testing_example_passes_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert MARKER in text, "README.md lost its testing-example marker"
    block = text.split(MARKER, 1)[1].split("```", 2)[1].removeprefix("python\n")
    (tmp_path / "test_readme_example.py").write_text(block, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_example.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # the example imports examples.quickstart.jobs
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "4 passed" in result.stdout, result.stdout + result.stderr
