"""What stands between a browser and a state change: the Host check, optional token auth, the CSRF token on every
POST, and response headers that keep pages out of frames, sniffing and foreign scripts."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Collection

from flask import Flask, Response, abort, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
RETURN_PATH = re.compile(r"/(?!/)[\w/-]*(\?page=[0-9]+)?")

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def install(
    app: Flask, *, auth_token: str | None, csrf_token: str, allowed_hosts: Collection[str] | None = None
) -> None:
    """Check every request of `app` in this order: Host (400), auth (401), the CSRF token on anything but a safe
    method (403; only POST routes exist); then add the headers to every response, errors included."""
    hosts = None if allowed_hosts is None else {_normal_host(host) for host in allowed_hosts}

    @app.before_request
    def check_request() -> None:
        if hosts is not None and host_name(request.host) not in hosts:
            abort(400, description=f"this dashboard does not answer to host {request.host!r}")
        if auth_token is not None and not authorized(request.headers.get("Authorization"), auth_token):
            raise Unauthorized(
                description="this dashboard needs the token of WORKQ_WEB_TOKEN, as the password of HTTP Basic "
                "auth (any user) or as `Authorization: Bearer <token>`",
                www_authenticate=WWWAuthenticate("basic", {"realm": "workq", "charset": "UTF-8"}),
            )
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
            if not same_secret(sent, csrf_token):
                abort(403, description="missing or wrong CSRF token: reload the page and try again")

    @app.after_request
    def add_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"  # live data, possibly behind auth
        return response


def authorized(header: str | None, token: str) -> bool:
    """True when `header` is `Basic` with `token` as the password (any user) or `Bearer <token>`."""
    if not header:
        return False
    scheme, _, credentials = header.partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer":
        return same_secret(credentials, token)
    if scheme == "basic":
        password = _basic_password(credentials)
        return password is not None and same_secret(password, token)
    return False


def same_secret(sent: str, expected: str) -> bool:
    """Constant-time comparison; hashing first hides the length and accepts any text (compare_digest on `str`
    refuses non-ASCII)."""
    return hmac.compare_digest(_digest(sent), _digest(expected))


def is_return_path(text: str) -> bool:
    """True for a path of this site, optionally with `?page=N`: never another host (`//evil`) or a scheme, so a
    form's `next` cannot turn the dashboard into an open redirect."""
    return RETURN_PATH.fullmatch(text) is not None


def host_name(host: str) -> str:
    """`Host` header value without its port, lower case: `[::1]:5040` → `::1`, `Example.org:80` → `example.org`."""
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return host.rpartition(":")[0].lower() if ":" in host else host.lower()


def _normal_host(host: str) -> str:
    return host.strip("[]").lower()


def _basic_password(credentials: str) -> str | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).digest()
