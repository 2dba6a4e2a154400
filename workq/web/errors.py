"""Errors as the caller can read them: JSON `{"error": ...}` for the API, a small page for browsers. A job that is
no longer there is 404, an unreachable Redis 503, and neither ever shows a traceback."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import Flask, Response, jsonify, make_response, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from workq.errors import ConnectionFailed, JobNotFound, NotDeleted, NotRetried
from workq.web.security import is_return_path

logger = logging.getLogger("workq.web")

KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")
TOO_LARGE = "the request body is too large: the dashboard's forms and API calls send a few hundred bytes"


def install(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        headers = [(name, value) for name, value in error.get_response().headers.items() if name in KEPT_HEADERS]
        description = TOO_LARGE if error.code == 413 else error.description or ""
        return _respond(error.code or 500, error.name, description, headers)

    @app.errorhandler(NotDeleted)
    @app.errorhandler(NotRetried)
    @app.errorhandler(JobNotFound)
    def gone(error: NotDeleted | NotRetried | JobNotFound) -> Response:
        return _respond(404, "Not Found", f"{error}: it may have been retried, deleted or requeued meanwhile")

    @app.errorhandler(ConnectionFailed)
    def redis_down(error: ConnectionFailed) -> Response:
        logger.warning("%s", error)
        return _respond(503, "Redis unreachable", str(error))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("dashboard request %s %s failed", request.method, request.path)
        return _respond(500, "Internal Server Error", "the dashboard failed to answer; see its log")


def wants_json() -> bool:
    """API callers get JSON; a browser form posting to the API (it sends `next`) gets a page like any browser."""
    return request.path.startswith("/api/") and _form_field("next") is None


def _form_field(name: str) -> str | None:
    """A form field, or None when the body cannot be read (too large: 413, or malformed) — the error being
    answered already says so, and answering it must not fail again."""
    try:
        return request.form.get(name)
    except HTTPException:
        return None


def _respond(code: int, name: str, description: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
    if wants_json():
        response = jsonify(error=description, status=code)
    else:
        back = _form_field("next") or ""
        if not is_return_path(back):
            back = url_for("pages.overview")
        page = render_template("error.html", title=name, code=code, name=name, description=description, back=back)
        response = make_response(page)
    response.status_code = code
    response.headers.extend(headers)
    return response
