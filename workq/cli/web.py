"""`workq web`: the dashboard, served by waitress (a production WSGI server, pure Python, no C build) on
127.0.0.1:5040 by default. Flask and waitress are imported only when the command runs, so `workq` works
without the `web` extra."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

import redis

from workq.cli.common import EXIT_FAILURE, EXIT_OK, UsageError, client_for
from workq.connection import describe
from workq.errors import ConnectionFailed

logger = logging.getLogger("workq.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5040
TOKEN_ENV = "WORKQ_WEB_TOKEN"
MISSING_EXTRA = "workq: the dashboard needs Flask and waitress: pip install 'workq[web]'"


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
    web.set_defaults(command=run_web)


def run_web(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    try:
        from waitress.server import MultiSocketServer, create_server  # noqa: PLC0415 (optional extra)

        from workq.web import create_app  # noqa: PLC0415 (optional extra)
        from workq.web.security import LOOPBACK_HOSTS  # noqa: PLC0415 (optional extra)
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        return EXIT_FAILURE

    client = client_for(args)
    try:
        client.redis.ping()
    except redis.RedisError as exc:
        raise ConnectionFailed(f"cannot reach Redis at {describe(client.redis)}: {exc}") from None

    loopback = is_loopback(args.host)
    if not loopback and not os.environ.get(TOKEN_ENV):
        logger.warning(
            "listening on %s without $%s: anyone who can reach this port can retry and delete jobs",
            args.host,
            TOKEN_ENV,
        )
    app = create_app(client, allowed_hosts=LOOPBACK_HOSTS if loopback else None)
    server = create_server(app, host=args.host, port=args.port, threads=args.threads, ident="workq")
    addresses = server.effective_listen if isinstance(server, MultiSocketServer) else [server.getsockname()]
    for host, port in addresses:
        logger.info(
            "dashboard of namespace %s (Redis %s) at %s", client.namespace, describe(client.redis), url(host, int(port))
        )
    signal.signal(signal.SIGTERM, _stop)
    server.run()  # returns after SIGINT or SIGTERM
    logger.info("dashboard stopped")
    return EXIT_OK


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
