"""Security headers on every response (errors included) and the last line against unexpected exceptions."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudsoc.api.failures import error_response

log = logging.getLogger("cloudsoc.console")

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
}


class SecurityMiddleware:
    """Adds :data:`HEADERS` (and ``Cache-Control``, ``Server-Timing``) to every response and turns crashes into
    a bare 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        started = False
        began = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                # Time in the server until the answer starts (browser dev tools and bench/ show it); no detail
                # beyond one number, so it tells an attacker nothing a stopwatch would not.
                headers["server-timing"] = f"app;dur={(time.perf_counter() - began) * 1000:.1f}"
                # Pages and API answers carry personal and security data: never cached. Static files may be.
                if not path.startswith("/static/"):
                    headers["cache-control"] = "no-store"
                elif "cache-control" not in headers:
                    headers["cache-control"] = "no-cache"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            error_id = secrets.token_hex(6)
            # The path only: query strings can hold values people did not mean to have logged.
            log.exception("console: unexpected error %s on %s %s", error_id, scope.get("method"), path)
            if started:
                return
            request = Request(scope, receive)
            response = error_response(request, 500, f"internal error (id {error_id}): the server log has the details")
            await response(scope, receive, send_with_headers)
