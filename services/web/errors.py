"""Errors as pages for browsers, JSON for the API.

A browser route (the pages under `/ui/`, the overview, sign-in and out, the API page) or an
address no route knows answers a browser (`Accept: text/html`) with a page of the layout: what
went wrong in plain words and where to go next. API routes, and any request that does not
accept HTML, keep FastAPI's JSON.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.web.auth import session_of
from services.web.pages import page

PAGE_PATHS = frozenset({"/", "/login", "/logout", "/api-docs", "/accessibility"})
PAGE_PREFIX = "/ui/"

TITLES = {
    400: "There is a problem with the request",
    403: "You cannot do that",
    404: "Page not found",
    405: "Page not found",
    413: "The upload is too large",
    422: "There is a problem with the address",
    429: "Too many requests",
    503: "Sorry, the service is unavailable",
}


def is_page_route(request: Request) -> bool:
    """The browser's own routes."""
    path = request.url.path
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIX)


def wants_html(request: Request) -> bool:
    """A browser asking for a page, or for an address no route knows."""
    if "text/html" not in request.headers.get("accept", ""):
        return False
    return is_page_route(request) or "endpoint" not in request.scope


def _words(detail: Any) -> list[str]:
    """An error's detail as sentences (FastAPI's are a string or a list of field errors)."""
    if isinstance(detail, str):
        return [detail[:1].upper() + detail[1:]]
    if isinstance(detail, Sequence):
        lines = []
        for item in detail:
            if isinstance(item, dict):
                field = item.get("field") or ".".join(str(p) for p in item.get("loc", ()))
                reason = item.get("reason") or item.get("msg") or ""
                lines.append(f"{field}: {reason}" if field else str(reason))
            else:
                lines.append(str(item))
        return lines
    return []


async def error_page(
    request: Request, status: int, detail: Any, headers: Mapping[str, str] | None = None
) -> Response:
    """The error page of a status, with the signed-in user if there is one."""
    try:
        await session_of(request)
    except Exception:
        request.state.session = None
    return page(
        request,
        "error.html.j2",
        status_code=status,
        headers=dict(headers or {}),
        status=status,
        heading=TITLES.get(status, "Sorry, there is a problem with the service"),
        lines=_words(detail),
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """HTTPException: a page for a browser, else FastAPI's JSON (redirects pass through)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code >= 400 and wants_html(request):
        return await error_page(request, exc.status_code, exc.detail, dict(exc.headers or {}))
    return await http_exception_handler(request, exc)


async def validation_error(request: Request, exc: Exception) -> Response:
    """A query or form parameter FastAPI refused: a page for a browser, else the JSON 422."""
    assert isinstance(exc, RequestValidationError)
    if wants_html(request):
        return await error_page(request, 422, list(exc.errors()))
    return await request_validation_exception_handler(request, exc)
