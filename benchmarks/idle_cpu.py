"""CPU of an idle `workq worker` (concurrency 10) over a window: `python -m benchmarks.idle_cpu [--seconds 30]`.

Starts a real worker process on an empty namespace of its own, lets it settle, then reads its user+system CPU
time from /proc before and after the window. `python -m benchmarks.run` measures the same, next to the peers.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.worker_process import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=10)
    options = parser.parse_args()
    namespace = f"bench-idle-{secrets.token_hex(4)}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workq",
            "worker",
            "examples.quickstart.jobs:pool",
            "--namespace",
            namespace,
            "--concurrency",
            str(options.concurrency),
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
    )
    try:
        time.sleep(3)  # imports and start-up are not idle time
        before, started = cpu_seconds(worker.pid), time.monotonic()
        time.sleep(options.seconds)
        used, elapsed = cpu_seconds(worker.pid) - before, time.monotonic() - started
        print(
            f"idle worker (concurrency {options.concurrency}): {used:.2f} s CPU in {elapsed:.1f} s "
            f"= {100 * used / elapsed:.2f}% of a core"
        )
    finally:
        worker.terminate()
        worker.wait(30)


if __name__ == "__main__":
    main()
