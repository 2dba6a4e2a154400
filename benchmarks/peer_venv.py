"""The peers' virtualenv (.bench-venv): RQ, Dramatiq and the profilers, created on first use from
benchmarks/peers-requirements.txt and re-created when that file changes. workq's own environment is never touched.

The other reply parser for workq: hiredis goes into a directory of its own (`.bench-venv/hiredis-site`), and
`.bench-venv/no-hiredis-site` holds a `hiredis` module that refuses to import. Either on PYTHONPATH flips what
workq's own environment has, so the same interpreter and redis-py run with and without hiredis; the peers keep
redis-py's own parser.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV = ROOT / ".bench-venv"
REQUIREMENTS = ROOT / "benchmarks" / "peers-requirements.txt"
ASYNC_BENCH_VENV = ROOT / ".bench-venv-async"
ASYNC_REQUIREMENTS = ROOT / "benchmarks" / "async-peers-requirements.txt"
"""arq and saq: arq pins redis < 6, so they live apart from the peers' redis 8.1."""
HIREDIS_REQUIREMENT = "hiredis==3.5.0"
STAMP = "requirements.sha256"
HIREDIS_BLOCKER = 'raise ImportError("hiredis disabled for this benchmark run")\n'


@dataclass(frozen=True)
class PeerVenv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def script(self, name: str) -> Path:
        return self.path / "bin" / name

    @property
    def hiredis_site(self) -> Path:
        return self.path / "hiredis-site"

    @property
    def no_hiredis_site(self) -> Path:
        return self.path / "no-hiredis-site"


def _wanted_stamp(requirements: Path) -> str:
    return hashlib.sha256((requirements.read_text() + HIREDIS_REQUIREMENT).encode()).hexdigest()


def ensure_peer_venv(path: Path = BENCH_VENV, log: bool = True, requirements: Path = REQUIREMENTS) -> PeerVenv:
    """Create or update the venv when the requirements changed; a no-op (a file read) otherwise."""
    venv = PeerVenv(path)
    stamp = path / STAMP
    wanted = _wanted_stamp(requirements)
    venv.no_hiredis_site.mkdir(parents=True, exist_ok=True)
    (venv.no_hiredis_site / "hiredis.py").write_text(HIREDIS_BLOCKER)
    if venv.python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return venv
    if log:
        print(f"setting up {path} from {requirements.name} (first use)...", file=sys.stderr, flush=True)
    pip_quiet = ["--quiet", "--disable-pip-version-check"]
    if not venv.python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(venv.python), "-m", "pip", "install", *pip_quiet, "-r", str(requirements)], check=True)
    subprocess.run(
        [
            str(venv.python),
            "-m",
            "pip",
            "install",
            *pip_quiet,
            "--no-deps",
            "--upgrade",
            "--target",
            str(venv.hiredis_site),
            HIREDIS_REQUIREMENT,
        ],
        check=True,
    )
    stamp.write_text(wanted)
    return venv


def ensure_async_peer_venv(log: bool = True) -> PeerVenv:
    """The venv of the asyncio peers (arq, saq), like `ensure_peer_venv`."""
    return ensure_peer_venv(ASYNC_BENCH_VENV, log, ASYNC_REQUIREMENTS)
