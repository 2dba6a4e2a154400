"""Private Redis topologies for the topology tests, each on free loopback ports in a directory of its own: a
3-master Redis Cluster, a master + replica watched by 3 Sentinels, a TLS-only server (with the certificates made
here by openssl), and a plain server. Nothing is kept on disk (`--save '' --appendonly no`); `stop()` is safe to
call on a half-started topology, so fixture finalizers can always call it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from figures import record
from redis_servers import HOST, START_TIMEOUT, RedisProcess, free_port, server_args
from support import wait_until

TESTS_DIR = Path(__file__).resolve().parents[1]


def report(test: str, **figures: object) -> str:
    """Print one line of a test's figures (and keep it for the session summary)."""
    line = f"[topologies] {test}: " + " ".join(
        f"{name}={value:.2f}" if isinstance(value, float) else f"{name}={value}" for name, value in figures.items()
    )
    record("topology figures", line)
    return line


def plain_server(workdir: Path) -> RedisProcess:
    port = free_port()
    return RedisProcess(workdir, port, server_args(port))


def stop_all(servers: Sequence[RedisProcess]) -> None:
    """Stop every server, even if stopping one of them fails."""
    failures = []
    for server in servers:
        try:
            server.stop()
        except Exception as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


# --- Redis Cluster -------------------------------------------------------------------------------------------------


class Cluster:
    """Three masters, no replicas, slots split evenly by `redis-cli --cluster create`."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.nodes = []
        for index in range(masters):
            port, bus_port = free_port(), free_port()  # explicit bus port: port + 10000 may not exist or be free
            args = server_args(
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                str(bus_port),
                "--cluster-node-timeout",
                "5000",
            )
            self.nodes.append(RedisProcess(workdir / f"node-{index}", port, args))

    @property
    def url(self) -> str:
        """workq's cluster URL, listing every node (one would do: the client discovers the rest)."""
        return "redis+cluster://" + ",".join(f"{HOST}:{node.port}" for node in self.nodes)

    def client(self) -> RedisCluster:
        return RedisCluster(host=HOST, port=self.nodes[0].port, socket_timeout=10)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"{HOST}:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}"
        for node in self.nodes:
            wait_until(partial(_cluster_ok, node), timeout=START_TIMEOUT, what=f"cluster_state:ok on {node.port}")

    def keyslot(self, key: str) -> int:
        """The slot of `key`, as the cluster computes it (CLUSTER KEYSLOT)."""
        with self.nodes[0].client() as probe:
            return int(probe.execute_command("CLUSTER KEYSLOT", key))

    def node_holding(self, key: str) -> RedisProcess:
        """The master that owns `key`'s slot, as the cluster says (CLUSTER KEYSLOT, CLUSTER SHARDS)."""
        slot = self.keyslot(key)
        with self.nodes[0].client() as probe:
            shards = probe.execute_command("CLUSTER SHARDS")  # parsed by redis-py into dicts
        for shard in shards:
            ranges = [int(bound) for bound in shard[b"slots"]]
            if any(low <= slot <= high for low, high in zip(ranges[::2], ranges[1::2], strict=True)):
                port = int(shard[b"nodes"][0][b"port"])
                return next(node for node in self.nodes if node.port == port)
        raise AssertionError(f"no shard owns slot {slot}")

    def flush(self) -> None:
        for node in self.nodes:
            with node.client() as client:
                client.flushall()

    def stop(self) -> None:
        stop_all(self.nodes)


def _cluster_ok(node: RedisProcess) -> bool:
    with node.client() as client:
        info = client.execute_command("CLUSTER INFO")  # parsed by redis-py into a dict of str
        return bool(info.get("cluster_state") == "ok")


# --- Sentinel ------------------------------------------------------------------------------------------------------

SERVICE = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class SentinelGroup:
    """A master, one replica of it, and three Sentinels (quorum 2) watching them as `SERVICE`. The data nodes and
    the Sentinels each require a password of their own, as in production."""

    master_password = "data-secret"
    sentinel_password = "sentinel-secret"

    def __init__(self, workdir: Path) -> None:
        master_port, replica_port = free_port(), free_port()
        data_node = [
            *("--requirepass", self.master_password, "--masterauth", self.master_password),
            *("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"),
        ]
        as_admin = {"password": self.master_password}
        self.master = RedisProcess(
            workdir / "master", master_port, server_args(master_port, *data_node), client_options=as_admin
        )
        self.replica = RedisProcess(
            workdir / "replica",
            replica_port,
            server_args(replica_port, *data_node, "--replicaof", HOST, str(master_port)),
            client_options=as_admin,
        )
        self.sentinels = []
        for index in range(3):
            port = free_port()
            sentinel_dir = workdir / f"sentinel-{index}"
            sentinel_dir.mkdir(parents=True, exist_ok=True)
            config = sentinel_dir / "sentinel.conf"  # Sentinel rewrites its config file: it must be writable
            config.write_text(
                f"port {port}\nbind {HOST}\ndir {sentinel_dir}\n"
                f"requirepass {self.sentinel_password}\nsentinel sentinel-pass {self.sentinel_password}\n"
                f"sentinel monitor {SERVICE} {HOST} {master_port} 2\n"
                f"sentinel auth-pass {SERVICE} {self.master_password}\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels.append(
                RedisProcess(
                    sentinel_dir,
                    port,
                    [str(config), "--sentinel"],
                    client_options={"password": self.sentinel_password},
                )
            )

    @property
    def url(self) -> str:
        """workq's sentinel URL: the data nodes' password before the sentinels, the sentinels' in the query."""
        sentinels = ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)
        return (
            f"redis+sentinel://:{self.master_password}@{sentinels}/{SERVICE}?sentinel_password={self.sentinel_password}"
        )

    def start(self) -> None:
        for server in (self.master, self.replica):
            server.start()
        for server in (self.master, self.replica):
            server.wait_ready()
        wait_until(self._replica_in_sync, timeout=START_TIMEOUT, what="the replica to sync with the master")
        for sentinel in self.sentinels:  # after the replica is in sync, so their first INFO of the master lists it
            sentinel.start()
        for sentinel in self.sentinels:
            sentinel.wait_ready()
        wait_until(
            self._sentinels_ready, timeout=START_TIMEOUT, what="each sentinel to know the replica and the others"
        )

    def _replica_in_sync(self) -> bool:
        with self.replica.client() as client:
            return bool(client.info("replication").get("master_link_status") == "up")

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_master(SERVICE)
                if int(state["num-slaves"]) != 1 or int(state["num-other-sentinels"]) != len(self.sentinels) - 1:
                    return False
        return True

    def master_port(self) -> int | None:
        """The master's port as a majority of the sentinels report it (None while they disagree)."""
        ports = []
        for sentinel in self.sentinels:
            try:
                with sentinel.client(socket_timeout=1) as client:
                    host_port = client.sentinel_get_master_addr_by_name(SERVICE)
            except redis.ConnectionError:
                continue
            if host_port:
                ports.append(int(host_port[1]))
        for port in set(ports):
            if ports.count(port) * 2 > len(self.sentinels):
                return port
        return None

    def replica_promoted(self) -> bool:
        """The sentinels name the replica as master and it says so itself (it accepts writes)."""
        if self.master_port() != self.replica.port:
            return False
        with self.replica.client() as client:
            return bool(client.info("replication").get("role") == "master")

    def stop(self) -> None:
        stop_all([*self.sentinels, self.replica, self.master])


# --- TLS -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A self-signed CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certificates(directory: Path) -> Certificates:
    """Made with the openssl CLI (P-256 keys: fast), valid for two days."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=30)

    key_options = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req", "-x509", *key_options, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=workq-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    for name, extensions in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (directory / f"{name}.ext").write_text(extensions)
        openssl("req", *key_options, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=workq-test-{name}")
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        )  # fmt: skip
    return Certificates(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


def tls_server(workdir: Path, certificates: Certificates, *, client_certificates: bool = False) -> RedisProcess:
    """A TLS-only redis-server (`--port 0`); with `client_certificates`, clients must present one signed by the CA."""
    port = free_port()
    args = [
        "--port", "0", "--tls-port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
        "--tls-cert-file", str(certificates.server_cert), "--tls-key-file", str(certificates.server_key),
        "--tls-ca-cert-file", str(certificates.ca), "--tls-auth-clients", "yes" if client_certificates else "no",
    ]  # fmt: skip
    ssl: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(certificates.ca), "ssl_cert_reqs": "required"}
    if client_certificates:
        ssl |= {"ssl_certfile": str(certificates.client_cert), "ssl_keyfile": str(certificates.client_key)}
    return RedisProcess(workdir, port, args, client_options=ssl)


def tls_url(
    server: RedisProcess, certificates: Certificates, *, userinfo: str = "", client_certificate: bool = False
) -> str:
    """The `rediss://` URL workq documents, verifying the server against the test CA."""
    query = f"ssl_ca_certs={certificates.ca}&ssl_cert_reqs=required"
    if client_certificate:
        query += f"&ssl_certfile={certificates.client_cert}&ssl_keyfile={certificates.client_key}"
    at = f"{userinfo}@" if userinfo else ""
    return f"rediss://{at}{HOST}:{server.port}/0?{query}"


# --- worker subprocesses -------------------------------------------------------------------------------------------


class WorkerCommand:
    """`python -m workq worker TARGET ...` run from tests/ (so `topologies.app` imports), logging to a file."""

    def __init__(self, log_path: Path, target: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log_file = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workq", "worker", target, *args],
            cwd=TESTS_DIR,
            env={**os.environ, **(env or {})},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful stop `workq worker` promises. Returns the exit status."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.alive:
            self.process.kill()
        try:
            self.process.wait(10)
        finally:
            self._log_file.close()


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
