"""`create_app`: one Flask app per Client, with its security checks, pages, API and error handling wired in."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Collection
from typing import Any

from flask import Flask

from workq.client import Client
from workq.entry_checks import problem_of
from workq.web import api, charts, errors, formatting, pages, prometheus, records, security
from workq.web.state import EXTENSION, Dashboard

TOKEN_ENV = "WORKQ_WEB_TOKEN"
REFRESH_MS = 4000
MAX_REQUEST_BYTES = 64 * 1024
"""Every form and API call is a few hundred bytes; anything far larger is refused (413) before it is read."""


def create_app(
    client: Client,
    *,
    auth_token: str | None = None,
    csrf_token: str | None = None,
    allowed_hosts: Collection[str] = security.LOOPBACK_HOSTS,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """The dashboard of `client`'s namespace as a WSGI app.

    `auth_token` (default: $WORKQ_WEB_TOKEN; unset or empty means no auth) is required of every request, as the
    HTTP Basic password or a Bearer token. `csrf_token` (default: random per app) must come with every POST.
    `allowed_hosts` are the host names (and addresses) the app answers to, in the `Host` header; any other is
    refused (400), which defeats DNS rebinding. There is no "any host" setting.
    """
    if auth_token is None:
        auth_token = os.environ.get(TOKEN_ENV) or None
    state = Dashboard(client=client, csrf_token=csrf_token or secrets.token_urlsafe(32), clock=clock)

    app = Flask(__name__)  # templates/ and static/ next to this module
    app.extensions[EXTENSION] = state
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.url_map.merge_slashes = False  # routes match exactly: `/pause//x` pauses `/x`, it is not redirected to `x`
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep gocraft/work's field order
    security.install(app, auth_token=auth_token, csrf_token=state.csrf_token, allowed_hosts=allowed_hosts)
    formatting.install(app)
    app.jinja_env.filters.update(problem=problem_of, other_fields=records.unshown_fields)
    errors.install(app)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(charts.blueprint)
    app.register_blueprint(prometheus.blueprint)

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        """A refused request (foreign Host, no credentials) gets a page without the token or the namespace."""
        if not security.trusted():
            return {"csrf_token": "", "namespace": "", "refresh_ms": REFRESH_MS}
        return {"csrf_token": state.csrf_token, "namespace": client.namespace, "refresh_ms": REFRESH_MS}

    return app
