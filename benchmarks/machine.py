"""What a benchmark ran on: CPU, cores, memory, Python, redis-py and hiredis, the Redis server, the peers'
versions, workq's commit and the load average (other work on the machine makes the figures noisy)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import redis

from benchmarks.peer_venv import ROOT
from benchmarks.systems import Interpreter

VERSIONS_SCRIPT = """
import importlib.metadata as metadata, redis.utils
names = ["redis", "rq", "dramatiq", "arq", "saq", "py-spy"]
found = []
for name in names:
    try:
        found.append(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
print(", ".join(found) + "; hiredis " + ("yes" if redis.utils.HIREDIS_AVAILABLE else "no"))
"""


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def versions(interpreter: Interpreter) -> str:
    """Package versions as `interpreter` (with its environment) sees them, hiredis included."""
    completed = subprocess.run(
        [str(interpreter.python), "-c", VERSIONS_SCRIPT],
        capture_output=True,
        text=True,
        env={**os.environ, **interpreter.env},
        check=False,
    )
    return completed.stdout.strip() or completed.stderr.strip()[-200:]


def workq_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "workq")
    return f"{commit}{' + uncommitted changes in workq/' if dirty else ''}"


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def describe(client: redis.Redis, interpreters: dict[str, Interpreter]) -> dict[str, str]:
    """The machine table; `interpreters` maps a label (workq, workq + hiredis, peers) to the Python it runs."""
    server = client.info("server")
    found = {
        "CPU": f"{cpu_model()}, {os.cpu_count()} cores",
        "memory": memory_total(),
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "Redis server": f"{server.get('redis_version')} ({server.get('arch_bits')}-bit, shared with other work)",
        "workq commit": workq_commit(),
    }
    for label, interpreter in interpreters.items():
        found[f"packages ({label})"] = versions(interpreter)
    return found
