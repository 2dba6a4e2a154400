"""Turning `redis=` arguments and environment defaults into a client, and Redis faults into workq errors.

Accepted: a `redis.Redis` or `redis.cluster.RedisCluster` client, or a URL:
- `redis://[user:password@]host:port/db`, `rediss://…` (TLS; `?ssl_ca_certs=…&ssl_certfile=…&ssl_keyfile=…`),
  `unix:///path/to/socket?db=0` — as redis-py parses them;
- `redis+cluster://[user:password@]host:port[,host:port…]` (`rediss+cluster://` for TLS): Redis Cluster, from any
  of the listed nodes;
- `redis+sentinel://[user:password@]host:port[,host:port…]/service_name[/db]` (`rediss+sentinel://` for TLS to the
  master): the master Sentinel names, rediscovered after a failover; `?sentinel_password=…` if the sentinels
  have their own.
A query option the scheme's redis-py client does not take is refused (ValueError naming it), not passed on.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.asyncio.cluster
import redis.asyncio.sentinel
from redis.cluster import KWARGS_DISABLED_KEYS, REDIS_ALLOWED_KEYS, ClusterNode, RedisCluster
from redis.connection import (
    URL_QUERY_ARGUMENT_PARSERS,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import (
    AskError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from workq.errors import ConnectionFailed, WorkqError
from workq.keys import key_prefix

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_NAMESPACE = "workq"

RedisClient: TypeAlias = "redis.Redis | RedisCluster"
AnyRedisClient: TypeAlias = "RedisClient | redis.asyncio.Redis | redis.asyncio.RedisCluster"
"""A client of either kind, for what only reads its settings (error messages)."""

REDIS_FAULTS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
"""The connection failed: the command may or may not have run. `is_redis_fault` also covers the refusals."""

_REFUSALS: tuple[type[Exception], ...] = (
    ReadOnlyError,  # a replica, or a master demoted by a failover
    TryAgainError,  # a slot half-migrated: the keys of a multi-key command are on two nodes
    AskError,  # with MovedError: a redirect not followed
    ClusterError,  # "TTL exhausted" after redirects; CLUSTERDOWN, MASTERDOWN
    SlotNotCoveredError,
)
_REFUSAL_CODES = frozenset({"MISCONF", "NOREPLICAS"})
"""Error codes of replies refusing every write for now (a failed RDB save; too few replicas), no class of their own."""
_TOPOLOGY_REFRESH_FAILURES = (
    "Redis Cluster cannot be connected",
    "All slots are not covered",
    "startup_nodes could not",
)
_REDIS_PY_DIR = os.path.dirname(os.path.abspath(redis.__file__))

ASYNC_POOL_SIZE = 100
"""Connections of a redis.asyncio client built from a URL (redis.asyncio's default); more tasks wait their turn."""

_CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
_CONNECTION_CLASSES: dict[str, type] = {
    "redis": Connection,
    "rediss": SSLConnection,
    "unix": UnixDomainSocketConnection,
    "redis+sentinel": SentinelManagedConnection,
    "rediss+sentinel": SentinelManagedSSLConnection,
}
_SET_BY_WORKQ = frozenset({"startup_nodes", "connection_class", "ssl", "host", "port", "path", "url"})
"""Keyword arguments workq derives from the URL itself (or the scheme): a query cannot set them."""
_COMMON_OPTIONS = "socket_timeout, socket_connect_timeout, health_check_interval, max_connections, client_name"


def resolve_namespace(namespace: str | None) -> str:
    return os.environ.get("WORKQ_NAMESPACE", DEFAULT_NAMESPACE) if namespace is None else namespace


def resolve_redis(client_or_url: RedisClient | str | None) -> RedisClient:
    """Use a given client as is; build one from a URL, else from `WORKQ_REDIS_URL`, else localhost."""
    if isinstance(client_or_url, (redis.Redis, RedisCluster)):
        return client_or_url
    client: RedisClient = _from_url(_url(client_or_url, "a redis.Redis or RedisCluster client"), for_asyncio=False)
    return client


def fit_connection_pool(client: RedisClient, needed: int, built_from: RedisClient | str | None) -> None:
    """Make sure `client` may open `needed` connections at once (redis-py 8 caps a pool at 100 by default, and a
    pool's worker threads each hold one while they wait for a job). `built_from` is what `resolve_redis` got: a
    client workq built from a URL that sets no `max_connections` grows; any other with a smaller cap is refused
    here, not later with "Too many connections"."""
    pool = client.connection_pool if isinstance(client, redis.Redis) else None
    if pool is None or pool.max_connections >= needed:  # a cluster client sizes its pools per node
        return
    if not isinstance(built_from, (redis.Redis, RedisCluster)):
        query = urlsplit(_url(built_from, "a redis.Redis or RedisCluster client")).query
        if "max_connections" not in dict(parse_qsl(query)):
            pool.max_connections = needed
            return
    raise ValueError(
        f"the Redis client may open {pool.max_connections} connections, but this pool needs up to {needed} "
        "(its worker threads and background loops): raise max_connections (in a URL: ?max_connections=N)"
    )


def resolve_async_redis(
    client_or_url: redis.asyncio.Redis | redis.asyncio.RedisCluster | str | None,
) -> redis.asyncio.Redis | redis.asyncio.RedisCluster:
    """`resolve_redis` for `workq.aio`: a redis.asyncio client as is, or one built from a URL."""
    if isinstance(client_or_url, (redis.asyncio.Redis, redis.asyncio.RedisCluster)):
        return client_or_url
    if isinstance(client_or_url, (redis.Redis, RedisCluster)):
        raise TypeError(
            f"redis must be a redis.asyncio client or a URL string, got {type(client_or_url).__module__}."
            f"{type(client_or_url).__name__} (workq.Enqueuer takes redis-py's sync clients)"
        )
    client: redis.asyncio.Redis | redis.asyncio.RedisCluster = _from_url(
        _url(client_or_url, "a redis.asyncio.Redis or RedisCluster client"), for_asyncio=True
    )
    return client


def _url(client_or_url: object, clients: str) -> str:
    url = client_or_url if client_or_url is not None else os.environ.get("WORKQ_REDIS_URL", DEFAULT_REDIS_URL)
    if not isinstance(url, str):
        raise TypeError(f"redis must be {clients} or a URL string, got {type(url).__name__}")
    return url


def _from_url(url: str, *, for_asyncio: bool) -> Any:
    """A client for `url`: redis-py's sync one, or its redis.asyncio one."""
    scheme = url.partition("://")[0].lower()
    try:
        _check_option_names(scheme, url)
        if scheme in _CLUSTER_SCHEMES:
            return _cluster_from_url(url, for_asyncio=for_asyncio)
        if scheme in _SENTINEL_SCHEMES:
            return _sentinel_from_url(url, redis.asyncio.sentinel.Sentinel if for_asyncio else Sentinel)
        options: dict[str, Any] = {"health_check_interval": 30}
        if scheme != "unix":
            options["socket_keepalive"] = True
        if for_asyncio:  # many tasks enqueue at once: past the pool's size they wait for a connection, not fail
            pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=ASYNC_POOL_SIZE, **options)
            return redis.asyncio.Redis.from_pool(pool)
        return redis.Redis.from_url(url, **options)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"invalid Redis URL {_redacted(url)!r}: {exc}") from None
    except Exception as exc:  # a cluster client connects at once
        if not is_redis_fault(exc):
            raise
        raise ConnectionFailed(f"cannot reach Redis at {_redacted(url)}: {exc}") from exc


def check_namespace_fits(client_or_url: AnyRedisClient | str | None, namespace: str) -> None:
    """On Redis Cluster every key of a namespace must share one slot: refuse a namespace without a hash tag now,
    rather than with CROSSSLOT errors later."""
    if client_or_url is None:
        client_or_url = os.environ.get("WORKQ_REDIS_URL", DEFAULT_REDIS_URL)
    on_cluster = isinstance(client_or_url, (RedisCluster, redis.asyncio.RedisCluster)) or (
        isinstance(client_or_url, str) and client_or_url.partition("://")[0].lower() in _CLUSTER_SCHEMES
    )
    if on_cluster and not _has_hash_tag(key_prefix(namespace)):
        raise WorkqError(
            f"namespace {namespace!r} cannot be used on Redis Cluster: write it in braces, e.g. '{{{namespace}}}', "
            "so that all its keys share one slot"
        )


def dedicated_client(client: RedisClient) -> RedisClient:
    """A client holding one connection of `client`'s pool for one thread alone: no pool checkout and health
    probe per command (a sixth of the cost of a cheap command). Cluster clients route per slot: shared as is."""
    if isinstance(client, redis.Redis) and not isinstance(client.connection_pool, SentinelConnectionPool):
        return _OneProcessClient(connection_pool=client.connection_pool, single_connection_client=True)
    return client  # a lone sentinel connection would redial the old master after a failover


class _OneProcessClient(redis.Redis):
    """A single-connection client that a forked child (gunicorn --preload, multiprocessing) does not share: there it
    takes a connection of its own and leaves the parent's socket alone (redis-py never shuts one down from a child)."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        held = self.connection
        if held is not None and held.pid != os.getpid():
            self.connection = self.connection_pool.get_connection()
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def describe(client: AnyRedisClient) -> str:
    """Where a client points, for error messages (never includes a password)."""
    if isinstance(client, (RedisCluster, redis.asyncio.RedisCluster)):
        nodes = client.get_nodes() or client.nodes_manager.startup_nodes.values()
        return "cluster " + ",".join(node.name for node in nodes)
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    service_name = getattr(client.connection_pool, "service_name", None)  # a Sentinel pool, of either kind
    if service_name is not None:
        return f"sentinel service {service_name}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def is_redis_fault(exc: BaseException) -> bool:
    """True when Redis, not the call, failed, so the same call may succeed later: the connection failed or timed
    out (the command may have run), or Redis refused the command without running it — READONLY (a failover),
    MISCONF (a failed RDB save), NOREPLICAS, a cluster slot moving or uncovered (TRYAGAIN, ASK/MOVED until redis-py
    gave up, CLUSTERDOWN) — or redis-py's cluster client failed to refresh its topology. Retrying is safe where the
    call is idempotent or the fault is a refusal."""
    if isinstance(exc, (*REDIS_FAULTS, *_REFUSALS)):
        return True
    if isinstance(exc, redis.ResponseError):
        return str(exc).partition(" ")[0] in _REFUSAL_CODES
    if isinstance(exc, RedisClusterException):
        return str(exc).startswith(_TOPOLOGY_REFRESH_FAILURES)
    return isinstance(exc, AttributeError) and _raised_inside_redis_py(exc)


def _raised_inside_redis_py(exc: BaseException) -> bool:
    """An AttributeError from redis-py's own code: its cluster client refreshing its topology while another thread
    uses it (seen during failovers), not a mistake of the caller."""
    traceback = exc.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return os.path.abspath(traceback.tb_frame.f_code.co_filename).startswith(_REDIS_PY_DIR + os.sep)


@contextmanager
def translated_faults(client: AnyRedisClient) -> Iterator[None]:
    """Re-raise Redis faults (see `is_redis_fault`) as `ConnectionFailed` naming the server."""
    try:
        yield
    except Exception as exc:
        if not is_redis_fault(exc):
            raise
        detail = str(exc).split(" : <", 1)[0]  # redis-py appends a client repr to sentinel errors
        if isinstance(exc, REDIS_FAULTS):
            raise ConnectionFailed(f"cannot reach Redis at {describe(client)}: {detail}") from exc
        raise ConnectionFailed(
            f"Redis at {describe(client)} cannot serve this now ({type(exc).__name__}: {detail})"
        ) from exc


def _split_url(url: str) -> tuple[str, str | None, str | None, list[tuple[str, int]], str, dict[str, str]]:
    """scheme, username, password, [(host, port)], path, query — for URLs with several comma-separated hosts."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    hosts = []
    for host_port in netloc.split(","):
        host, _, port = host_port.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"expected host:port, got {host_port!r}")
        hosts.append((host.strip("[]"), int(port)))
    return scheme.lower(), username, password, hosts, path, dict(parse_qsl(query))


def _cluster_from_url(url: str, *, for_asyncio: bool) -> Any:
    """A cluster client (redis.asyncio's connects on first use; redis-py's at once)."""
    scheme, username, password, hosts, _, query = _split_url(url)
    options = _options(query)
    if scheme.startswith("rediss"):
        options["ssl"] = True
    if for_asyncio:
        return redis.asyncio.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in hosts],
            username=username,
            password=password,
            **options,
        )
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in hosts],  # type: ignore[no-untyped-call]
        username=username,
        password=password,
        **options,
    )


def _sentinel_from_url(url: str, sentinel_class: type[Sentinel | redis.asyncio.sentinel.Sentinel]) -> Any:
    scheme, username, password, hosts, path, query = _split_url(url)
    service_name, _, db = path.strip("/").partition("/")
    if not service_name:
        raise ValueError("a sentinel URL names the service: redis+sentinel://host:port/service_name[/db]")
    sentinel_password = query.pop("sentinel_password", None)
    options = _options(query)
    if scheme.startswith("rediss"):
        options["ssl"] = True
    sentinel = sentinel_class(
        hosts,
        sentinel_kwargs={"password": sentinel_password, "socket_timeout": 5, "socket_keepalive": True}
        if sentinel_password
        else None,
        socket_timeout=5,
        socket_keepalive=True,
    )
    defaults: dict[str, Any] = {"db": int(db or 0), "socket_keepalive": True, "health_check_interval": 30}
    return sentinel.master_for(service_name, username=username, password=password, **{**defaults, **options})


def _check_option_names(scheme: str, url: str) -> None:
    """Refuse (ValueError) a query option the scheme's client does not take, naming it: redis-py would pass it on
    and fail with a TypeError at the first command (or, on a cluster, silently drop a misspelt option)."""
    names = {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    names.discard("sentinel_password" if scheme in _SENTINEL_SCHEMES else "")
    accepted = _accepted_options(scheme)
    for name in sorted(names - accepted):
        if name in _accepted_options("rediss") - _accepted_options("redis"):
            raise ValueError(
                f"option {name!r} is for TLS: use a rediss:// URL (or rediss+cluster://, rediss+sentinel://)"
            )
        raise ValueError(f"unknown option {name!r} (a typo? options include {_COMMON_OPTIONS})")


@cache
def _accepted_options(scheme: str) -> frozenset[str]:
    """The keyword arguments a URL of `scheme` may set: those its redis-py connection class (or cluster client)
    takes, and `max_connections` of its pool."""
    if scheme in _CLUSTER_SCHEMES:
        names = set(_parameters(RedisCluster)) | (set(REDIS_ALLOWED_KEYS) - set(KWARGS_DISABLED_KEYS))
    else:
        names = {name for cls in _CONNECTION_CLASSES.get(scheme, Connection).__mro__ for name in _parameters(cls)}
    return frozenset(names - _SET_BY_WORKQ) | {"max_connections"}


def _parameters(cls: type) -> list[str]:
    init = cls.__dict__.get("__init__")
    if init is None:
        return []
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [name for name, spec in inspect.signature(init).parameters.items() if spec.kind in keywords][1:]


def _has_hash_tag(key: str) -> bool:
    """Redis Cluster hashes only what is between the first `{` and the next `}`, when that is not empty."""
    opening = key.find("{")
    closing = key.find("}", opening + 1)
    return opening >= 0 and closing > opening + 1


def _options(query: dict[str, str]) -> dict[str, Any]:
    """URL query values typed as redis-py types them in `from_url` (numbers, booleans)."""
    options: dict[str, Any] = {}
    for name, value in query.items():
        parser: Any = URL_QUERY_ARGUMENT_PARSERS.get(name)
        options[name] = parser(value) if parser is not None else value
    return options


def _redacted(url: str) -> str:
    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)


def reply_text(value: bytes | str) -> str:
    """A Redis reply (or member) as text; bytes that are not UTF-8 are replaced, never raised on: replies are data
    anyone could have written."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
