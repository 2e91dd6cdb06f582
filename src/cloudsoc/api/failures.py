"""How errors reach clients: JSON ``{"error": {"status", "message"}}`` for the API, a small page for browsers.

Never a stack trace: unexpected exceptions become a 500 with an id that is also in the server log
(:class:`cloudsoc.api.middleware.SecurityMiddleware` catches them).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from cloudsoc.errors import ConsoleError, NotAuthenticated

_REASONS = {400: "bad request", 401: "not signed in", 403: "forbidden", 404: "not found", 405: "method not allowed"}


def is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def is_page(path: str) -> bool:
    return not is_api(path) and not path.startswith("/static/")


def error_response(
    request: Request,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Response:
    """The error as the client wants it: JSON for the API and static files, an HTML page otherwise."""
    if is_page(request.url.path):
        console = getattr(request.app.state, "console", None)
        if console is not None:
            principal = getattr(request.state, "principal", None)
            response: Response = console.render(
                request, "error.html", {"status": status, "message": message}, principal=principal, status=status
            )
            if headers:
                response.headers.update(headers)
            return response
    body = {"status": status, "message": message, **(extra or {})}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    if isinstance(exc, NotAuthenticated) and is_page(request.url.path):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(request, exc.status, exc.message, headers, exc.extra)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail: Any = exc.detail
    message = detail if isinstance(detail, str) and detail else _REASONS.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"not found: {request.url.path[:200]}"
    return error_response(request, exc.status_code, message, dict(exc.headers) if exc.headers else None)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, _validation_message(exc))


def install(app: FastAPI) -> None:
    """Register the error handlers on an app."""
    app.add_exception_handler(ConsoleError, _console_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
