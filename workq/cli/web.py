"""`workq web`: the dashboard, served by waitress (a production WSGI server, pure Python, no C build) on
127.0.0.1:5040 by default. Flask and waitress are imported only when the command runs, so `workq` works
without the `web` extra."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

import redis

from workq.cli.common import EXIT_FAILURE, EXIT_OK, UsageError, client_for
from workq.connection import describe
from workq.distribution import install_hint
from workq.errors import ConnectionFailed, WorkqError

logger = logging.getLogger("workq.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5040
TOKEN_ENV = "WORKQ_WEB_TOKEN"
MISSING_EXTRA = f"workq: the dashboard needs Flask and waitress: {install_hint('web')}"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    web = commands.add_parser(
        "web",
        parents=[connection],
        help="serve the web dashboard (needs the web extra)",
        description=f"Serve the dashboard. Set ${TOKEN_ENV} to require that token (HTTP Basic password or Bearer).",
    )
    web.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}: this machine only)"
    )
    web.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    web.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    web.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a name the dashboard answers to in the Host header besides its bind address and this machine's "
        "names (e.g. the public name of a proxy in front of it); repeatable. Any other Host is refused",
    )
    web.add_argument(
        "--insecure",
        action="store_true",
        help=f"serve a non-loopback address without ${TOKEN_ENV}: anyone who can reach the port can retry and "
        "delete jobs",
    )
    web.set_defaults(command=run_web)


def run_web(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    try:
        from waitress.server import MultiSocketServer, create_server  # noqa: PLC0415 (optional extra)

        from workq.web import create_app  # noqa: PLC0415 (optional extra)
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        return EXIT_FAILURE

    token = os.environ.get(TOKEN_ENV) or None
    host = args.host.strip("[]")
    check_exposure(host, token, insecure=args.insecure)
    hosts = allowed_hosts(host, args.allow_host)
    client = client_for(args)
    app = create_app(client, auth_token=token, allowed_hosts=hosts)
    try:  # bind first: a bad address or a busy port is reported before Redis is touched
        server = create_server(app, host=host, port=args.port, threads=args.threads, ident="workq")
    except (OSError, ValueError) as exc:
        reason = "no such address or name" if isinstance(exc, ValueError) else exc.strerror or str(exc)
        raise WorkqError(f"cannot listen on {url(host, args.port)}: {reason}") from None
    try:
        client.redis.ping()
    except redis.RedisError as exc:
        server.close()
        raise ConnectionFailed(f"cannot reach Redis at {describe(client.redis)}: {exc}") from None
    if not is_loopback(host) and token is None:
        logger.warning(
            "serving %s without $%s (--insecure): anyone who can reach it can retry and delete jobs", host, TOKEN_ENV
        )
    addresses = server.effective_listen if isinstance(server, MultiSocketServer) else [server.getsockname()]
    for address, port in addresses:
        logger.info(
            "dashboard of namespace %s (Redis %s) at %s",
            client.namespace,
            describe(client.redis),
            url(address, int(port)),
        )
    logger.info("answering to Host %s (add names with --allow-host)", ", ".join(sorted(hosts)))
    signal.signal(signal.SIGTERM, _stop)
    server.run()  # returns after SIGINT or SIGTERM
    logger.info("dashboard stopped")
    return EXIT_OK


def check_exposure(host: str, token: str | None, *, insecure: bool) -> None:
    """Refuse (a usage error) to serve beyond this machine without a token unless told to, and a token that
    no client could send."""
    if token is not None and (token != token.strip() or not token.isprintable()):
        raise UsageError(f"${TOKEN_ENV} has spaces at its ends or control characters: no client could send it")
    if token is None and not insecure and not is_loopback(host):
        raise UsageError(
            f"refusing to serve {host} without ${TOKEN_ENV}: set it to a secret (clients send it as the Basic "
            "password or a Bearer token), or pass --insecure if anyone who can reach this port may change jobs"
        )


def allowed_hosts(host: str, extra: Sequence[str]) -> list[str]:
    """The names the dashboard answers to in `Host`: its bind address, the loopback names when it listens on
    loopback (or everywhere), this machine's names when it listens beyond it, and `extra`."""
    names = {host, *extra} - set(WILDCARD_HOSTS)
    if is_loopback(host) or host in WILDCARD_HOSTS:
        names.update(LOOPBACK_NAMES)
    if not is_loopback(host):
        names.update({socket.gethostname(), socket.getfqdn()})
    return sorted(names)


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # waitress's run() closes the server on it
