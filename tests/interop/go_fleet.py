"""The real gocraft/work in the tests: `gofleet` (a Go pool or enqueuer, see gofleet/main.go) built offline with
Debian's Go toolchain and Go packages against gocraft/work's own source (gocraft_work/master, gocraft_work/v0.5.1).

Builds are cached in a temporary directory keyed by a hash of every input, so only the first run pays for them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support import wait_until

HERE = Path(__file__).resolve().parent
DEBIAN_GO_SOURCES = Path("/usr/share/gocode/src")
REDIGO = DEBIAN_GO_SOURCES / "github.com/gomodule/redigo"
ROBFIG_CRON_V3 = DEBIAN_GO_SOURCES / "github.com/robfig/cron"
DEBIAN_PACKAGES = "golang-go golang-github-gomodule-redigo-dev golang-github-robfig-cron-dev"
VERSIONS = ("master", "v0.5.1")
"""gocraft/work's master (by-key unique jobs, `unique_key` in job JSON) and its last tag, still widely deployed."""
BUILD_TIMEOUT = 300.0


def go_missing() -> str | None:
    """Why gofleet cannot be built here, or None."""
    if shutil.which("go") is None:
        return f"the Go toolchain is missing: apt-get install {DEBIAN_PACKAGES}"
    for path in (REDIGO, ROBFIG_CRON_V3):
        if not path.is_dir():
            return f"{path} is missing: apt-get install {DEBIAN_PACKAGES}"
    return None


def build(version: str) -> Path:
    """The gofleet binary for gocraft/work `version`, built once per distinct set of inputs.

    GOPATH mode (GO111MODULE=off) over a tree of links: nothing is downloaded. Debian packages robfig/cron v3
    only; v0.5.1 imports v1's path, served by robfig_cron_v1 (v1's Parse on top of v3)."""
    sources = [*sorted((HERE / "gofleet").glob("*.go")), *sorted((HERE / "gocraft_work" / version).glob("*.go"))]
    sources.append(HERE / "robfig_cron_v1" / "cron.go")
    go_version = subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256(go_version.encode())
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for tree in (REDIGO, ROBFIG_CRON_V3):
        for path in sorted(tree.rglob("*.go")):
            digest.update(str(path).encode() + b"\0" + path.read_bytes())
    root = Path(tempfile.gettempdir()) / f"workq-gofleet-{version}-{digest.hexdigest()[:16]}"
    binary = root / "gofleet"
    if binary.exists():
        return binary
    staging = Path(tempfile.mkdtemp(prefix=f"{root.name}.", dir=root.parent))
    try:
        src = staging / "src"
        _copy(HERE / "gocraft_work" / version, src / "github.com/gocraft/work")
        _copy(HERE / "gofleet", src / "gofleet")
        _copy(HERE / "robfig_cron_v1", src / "github.com/robfig/cron")
        (src / "github.com/robfig/cron/v3").symlink_to(ROBFIG_CRON_V3)
        (src / "github.com/gomodule").mkdir(parents=True)
        (src / "github.com/gomodule/redigo").symlink_to(REDIGO)
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(staging), "GOFLAGS": "", "GOPROXY": "off"}
        env["GOCACHE"] = str(staging / "gocache")
        tags = ["-tags", "bykey"] if version == "master" else []
        result = subprocess.run(
            ["go", "build", *tags, "-o", str(staging / "gofleet"), "."],
            cwd=src / "gofleet",
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building gofleet against gocraft/work {version} failed:\n{result.stderr}")
        try:
            staging.rename(root)
        except OSError:  # another session built it meanwhile
            if not binary.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def _copy(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.go"):
        shutil.copy(path, destination / path.name)


class GoPool:
    """A running gocraft/work WorkerPool (`gofleet pool`); `stop()` is gocraft's clean Stop, `kill()` a crash."""

    def __init__(
        self,
        binary: Path,
        redis_url: str,
        namespace: str,
        jobs: Sequence[str],
        *,
        label: str,
        fail: Sequence[str] = (),
        hold: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """`jobs`: names, each optionally `name:max_concurrency`; `fail`: names whose handler errs; `hold`: names
        whose handler waits for the key `<ns>:interop:release`."""
        argv = [str(binary), "pool", "-url", redis_url, "-ns", namespace, "-label", label, "-jobs", ",".join(jobs)]
        argv += ["-fail", ",".join(fail), "-hold", ",".join(hold)]
        self.label = label
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._output: list[str] = []
        self._reader = threading.Thread(target=self._read, name=f"gofleet-{label}-output", daemon=True)
        self._reader.start()
        wait_until(lambda: "started" in self._output or self.process.poll() is not None, 20, what=f"{label} start")
        if "started" not in self._output:
            raise RuntimeError(f"gofleet pool {label} did not start:\n{self.output}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._output.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self._output)

    def stop(self) -> None:
        """gocraft/work's WorkerPool.Stop: finish running jobs, deregister the pool."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(30)
        self._reader.join(5)
        if "stopped" not in self._output:
            raise RuntimeError(f"gofleet pool {self.label} did not stop cleanly:\n{self.output}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(5)


def go_enqueue(
    binary: Path,
    redis_url: str,
    namespace: str,
    name: str,
    args: dict[str, Any],
    *,
    count: int = 1,
    unique: bool = False,
    key: dict[str, Any] | None = None,
    in_seconds: int = 0,
) -> list[str]:
    """`gofleet enqueue`: one line per job, its JSON as gocraft/work wrote it or "dup". `count` > 1 adds an arg
    `i`; `key` is EnqueueUniqueByKey (master only)."""
    argv = [str(binary), "enqueue", "-url", redis_url, "-ns", namespace, "-name", name, "-args", json.dumps(args)]
    argv += ["-count", str(count), "-in", str(in_seconds)]
    if unique:
        argv.append("-unique")
    if key is not None:
        argv += ["-key", json.dumps(key)]
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"gofleet enqueue failed: {result.stderr}")
    return result.stdout.splitlines()


def go_next_fire_times(binary: Path, specs: Sequence[str], after: int, count: int, tz: str) -> list[list[int]]:
    """Per spec, its next `count` fire times after `after` as gocraft/work master computes them on a host whose
    zone is `tz`."""
    argv = [str(binary), "next", "-after", str(after), "-count", str(count), *specs]
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30, env={**os.environ, "TZ": tz})
    if result.returncode != 0:
        raise RuntimeError(f"gofleet next failed: {result.stderr}")
    return [[int(epoch) for epoch in line.split()] for line in result.stdout.splitlines()]
