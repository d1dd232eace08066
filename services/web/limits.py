"""Request bodies are bounded before they are read: Content-Length first, then as they stream.

A route that reads its body (the commands' JSON, the login form parsed by FastAPI) only ever
sees up to its limit; a larger body is answered 413 without reading the rest.
"""

import re
from collections.abc import Callable, Mapping, Sequence

from fastapi import HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, [{"field": "(body)", "reason": f"larger than {limit} bytes"}])


class BodyLimit:
    """ASGI middleware: at most `limits[path]`, else the limit of the first of `patterns` the
    path matches (routes with a path parameter, such as an evidence upload), else `default`
    bytes of body per request."""

    def __init__(
        self,
        app: ASGIApp,
        limits: Mapping[str, int],
        default: int,
        patterns: Sequence[tuple[str | re.Pattern[str], int]] = (),
        page: Callable[[int], str] | None = None,
    ) -> None:
        self.app = app
        self.limits = dict(limits)
        self.default = default
        # Paths with a parameter (an evidence upload's recommendation) by regular expression.
        self.patterns = [(re.compile(p) if isinstance(p, str) else p, n) for p, n in patterns]
        # A browser (Accept: text/html) is answered with this page instead of JSON.
        self.page = page

    def limit_of(self, path: str) -> int:
        """The bound of a path's bodies."""
        if path in self.limits:
            return self.limits[path]
        for pattern, limit in self.patterns:
            if pattern.fullmatch(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Answered before a byte of the body is read; the server then closes the connection.
            error = _too_large(limit)
            response: Response = JSONResponse({"detail": error.detail}, status_code=413)
            if self.page is not None and _accepts_html(scope):
                response = HTMLResponse(self.page(limit), status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> Message:
            # Chunked bodies (or a lying Content-Length) are counted as they arrive; raising
            # here stops the route's read, and FastAPI turns the exception into the 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, bounded_receive, send)


def _accepts_html(scope: Scope) -> bool:
    return any(name == b"accept" and b"text/html" in value for name, value in scope["headers"])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The HTTP server has already refused a malformed length.
            return int(value)
    return None
