"""What stands between a browser and a state change: the Host check, optional token auth, the CSRF token on every
POST (handed only to requests that passed the first two), same-origin checks on browser POSTs, and response headers
that keep pages out of frames, sniffing and foreign scripts."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Collection
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_COOKIE_PREFIX = "workq_csrf_"
"""The SameSite=Strict cookie a browser must send back with the token; named after the token, so dashboards on
other ports of the same host (which share cookies) do not overwrite each other's."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
RETURN_PATH = re.compile(r"/(?!/)[\w/-]*(\?page=[0-9]+|\?job_name=[\w%.~-]+(&page=[0-9]+)?)?")
"""A path of this dashboard with, at most, a page number and a percent-encoded queue name (`/queue?job_name=a%2Fb`)."""

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
    "Referrer-Policy": "same-origin",  # not "no-referrer": with it, browsers send `Origin: null` on our own forms
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def install(
    app: Flask, *, auth_token: str | None, csrf_token: str, allowed_hosts: Collection[str] = LOOPBACK_HOSTS
) -> None:
    """Check every request of `app` in this order: Host (400), auth (401); only a request that passed both is
    `trusted()` and may see the CSRF token. Then, on anything but a safe method (only POST routes exist): a browser
    POST from another site (`Sec-Fetch-Site`, `Origin`) or without the token's cookie (403), and the CSRF token
    itself (403). Every response, errors included, gets the security headers."""
    hosts = {_normal_host(host) for host in allowed_hosts}
    cookie = csrf_cookie_name(csrf_token)

    @app.before_request
    def check_request() -> None:
        if host_name(request.host) not in hosts:
            abort(400, description=f"this dashboard does not answer to host {request.host!r}")
        if auth_token is not None and not authorized(request.headers.get("Authorization"), auth_token):
            raise Unauthorized(
                description="this dashboard needs the token of WORKQ_WEB_TOKEN, as the password of HTTP Basic "
                "auth (any user) or as `Authorization: Bearer <token>`",
                www_authenticate=WWWAuthenticate("basic", {"realm": "workq", "charset": "UTF-8"}),
            )
        g.workq_trusted = True
        if request.method not in SAFE_METHODS:
            refusal = cross_site_refusal(request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin"))
            if refusal is None and _from_browser() and not same_secret(request.cookies.get(cookie, ""), csrf_token):
                refusal = "this browser did not send the dashboard's cookie: enable cookies and reload the page"
            if refusal is not None:
                abort(403, description=refusal)
            sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
            if not same_secret(sent, csrf_token):
                abort(403, description="missing or wrong CSRF token: reload the page and try again")

    @app.after_request
    def add_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"  # live data, possibly behind auth
            if trusted():
                response.set_cookie(
                    cookie, csrf_token, path="/", httponly=True, samesite="Strict", secure=request.is_secure
                )
        return response


def trusted() -> bool:
    """Whether the current request passed the Host and auth checks: only its response may carry the CSRF token."""
    return bool(g.get("workq_trusted", False))


def csrf_cookie_name(csrf_token: str) -> str:
    return CSRF_COOKIE_PREFIX + hashlib.sha256(csrf_token.encode()).hexdigest()[:12]


def cross_site_refusal(fetch_site: str | None, origin: str | None) -> str | None:
    """Why a state change sent by a browser on behalf of another site is refused, or None when nothing says so:
    `Sec-Fetch-Site` must be `same-origin`; from a browser too old to send it, `Origin` must name this very host
    and port."""
    if fetch_site is not None:
        if fetch_site == "same-origin":
            return None
        return f"refused a {fetch_site} request: changes are accepted only from the dashboard's own pages"
    if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
        return f"refused a request from origin {origin[:100]!r}: changes are accepted only from the dashboard itself"
    return None


def _from_browser() -> bool:
    """Browsers mark their requests (Fetch Metadata, Origin on POST); scripts and curl send neither."""
    return "Sec-Fetch-Site" in request.headers or "Origin" in request.headers


def authorized(header: str | None, token: str) -> bool:
    """True when `header` is `Basic` with `token` as the password (any user) or `Bearer <token>`; a non-ASCII
    token works either way (a Bearer token sent as UTF-8 or as Latin-1)."""
    if not header:
        return False
    scheme, _, credentials = header.partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer":
        return same_secret(credentials, token) or same_secret(_utf8_header(credentials), token)
    if scheme == "basic":
        password = _basic_password(credentials)
        return password is not None and same_secret(password, token)
    return False


def same_secret(sent: str, expected: str) -> bool:
    """Constant-time comparison; hashing first hides the length and accepts any text (compare_digest on `str`
    refuses non-ASCII)."""
    return hmac.compare_digest(_digest(sent), _digest(expected))


def is_return_path(text: str) -> bool:
    """True for a path of this site, optionally with `?page=N` or a queue page's `?job_name=…&page=N`: never
    another host (`//evil`) or a scheme, so a form's `next` cannot turn the dashboard into an open redirect."""
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


def _utf8_header(text: str) -> str:
    """A header value as sent in UTF-8: WSGI hands headers over decoded as Latin-1 (PEP 3333)."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).digest()
