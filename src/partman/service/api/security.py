"""The headers every response carries, and the one check that needs no route: a browser's
cross-site request that would change something is refused before it reaches one.

The web UI's policy allows scripts, styles, images and requests from the service's own origin
only: no inline script or style (`unsafe-inline`), no `eval`, no plugin, no `<base>`, no
framing (clickjacking). A page that renders an inline script of its own (Swagger UI's start-up
script in /docs) gets a policy naming that script by its hash (`hashed_policy`), so nothing
else inline runs there either.

A service listening on loopback answers only requests that name a loopback address in their
Host header: a page of another site that points its own DNS name at 127.0.0.1 (DNS
rebinding) would otherwise be same-origin with the service and read everything it shows.

CSRF needs no token of its own here: the service takes credentials only from the
`Authorization` header, which a browser never adds by itself, and grants no other origin
anything by CORS (no `Access-Control-Allow-*` header is ever sent, so a preflight from
elsewhere fails and a cross-origin page cannot send that header). A request a browser marks as
coming from another origin's page (`Sec-Fetch-Site: cross-site` or `same-site`) that would
change something is refused all the same, before any route runs: defence in depth should a
proxy in front ever add credentials of its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...model.service_options import is_loopback

_log = logging.getLogger("partman.service")

BASE_POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'",),
    "connect-src": ("'self'",),
    "font-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}
HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_INLINE = re.compile(r"<(script|style)(\s[^>]*)?>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)


def policy(extra: Mapping[str, Iterable[str]] | None = None) -> str:
    """The Content-Security-Policy: `BASE_POLICY`, each directive in `extra` widened by the
    sources given."""
    directives = {name: list(sources) for name, sources in BASE_POLICY.items()}
    for name, sources in (extra or {}).items():
        directives.setdefault(name, ["'self'"]).extend(sources)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


UI_POLICY = policy()


def hashed_policy(html: str, extra: Mapping[str, Iterable[str]] | None = None) -> str:
    """A policy for a page of our own making with inline `<script>`/`<style>` blocks: each is
    allowed by its SHA-256 and nothing else inline is."""
    widened: dict[str, list[str]] = {name: list(v) for name, v in (extra or {}).items()}
    for m in _INLINE.finditer(html):
        attributes, body = m.group(2) or "", m.group(3)
        if m.group(1).lower() == "script" and "src=" in attributes.lower():
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        directive = "script-src" if m.group(1).lower() == "script" else "style-src"
        widened.setdefault(directive, []).append(f"'sha256-{digest}'")
    return policy(widened)


class SecurityHeaders:
    """ASGI middleware: the headers on every HTTP response (a route that set its own
    Content-Security-Policy keeps it), and cross-site writes refused."""

    def __init__(self, app: ASGIApp, *, loopback_only: bool = False) -> None:
        self.app = app
        self.loopback_only = loopback_only
        self.headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
        self.csp = (b"content-security-policy", UI_POLICY.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.loopback_only and not _named_loopback(scope):
            await self._answer(
                send,
                403,
                "forbidden",
                "this service listens on loopback and answers only to a loopback name "
                "(127.0.0.1, localhost, [::1]) in the Host header: a page whose DNS name "
                "points here is refused. Behind a proxy, have it send Host: 127.0.0.1, or "
                "listen on another address with a token",
            )
            return
        if scope["method"] not in SAFE_METHODS and _cross_site(scope):
            await self._refuse(send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in names)
                if self.csp[0] not in names:
                    headers.append(self.csp)
                if scope["path"].startswith("/api/") and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # an error no handler took: answered here, with the headers and without its
            # text; the traceback goes to the log
            if started:
                raise
            _log.exception("%s %s failed", scope["method"], scope["path"])
            await self._answer(send, 500, "internal_error", "the service failed; its log says why")

    async def _refuse(self, send: Send) -> None:
        await self._answer(
            send,
            403,
            "forbidden",
            "a cross-site request cannot change anything here: send it from the service's own "
            "page or from a client that is not a browser",
        )

    async def _answer(self, send: Send, status: int, kind: str, message: str) -> None:
        body = json.dumps({"error": kind, "message": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *self.headers,
                    self.csp,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _cross_site(scope: Scope) -> bool:
    """A browser says where a request comes from: `Sec-Fetch-Site` is `same-origin` from the
    service's own page and `none` when a person typed the address; `same-site` (another port
    or subdomain) and `cross-site` are some other page's doing."""
    for name, value in scope.get("headers", []):
        if name == b"sec-fetch-site":
            return value.strip().lower() in (b"cross-site", b"same-site")
    return False


def _named_loopback(scope: Scope) -> bool:
    """The Host header names this machine's loopback (or is absent, as an HTTP/1.0 client
    may leave it): what every request to a loopback listener carries, except one from a page
    of another site that rebinds its own DNS name to 127.0.0.1 (DNS rebinding)."""
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = value.decode("latin-1").strip()
            if host.startswith("["):
                host = host[1 : host.find("]")] if "]" in host else host
            elif host.count(":") == 1:
                host = host.split(":", 1)[0]
            return is_loopback(host)
    return True
