"""Every request observed once: counted and timed for /metrics, and the access log: one
structured line per request, written when its response ends.

method, path (never the query string, which may hold a token), status, duration in
milliseconds, and the request's id when the client sent one (X-Request-ID or
X-Correlation-ID), which is also bound to every record logged while the request is served.
No header is logged, so never Authorization or a cookie. A request that sends commands binds
their command_id and correlation_id too (`bind_commands`), so its access line names them.
"""

import time
from collections.abc import Sequence
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.domain.commands import Command
from services.web.metrics import count_request

log = structlog.get_logger("rectrack.access")

_ID_HEADERS = (b"x-request-id", b"x-correlation-id")
# An id is the client's text: kept short and printable.
_ID_MAX = 128


def request_id(scope: Scope) -> str | None:
    """The id the client gave the request, if any."""
    for name, value in scope.get("headers", ()):
        if name.lower() in _ID_HEADERS:
            text = value.decode("latin-1")[:_ID_MAX]
            return "".join(c for c in text if c.isprintable()) or None
    return None


# A form may send many commands at once; a log line names this many at most.
_IDS_MAX = 50


def bind_commands(commands: Sequence[Command]) -> None:
    """Name these commands in every record logged for the rest of this request, its access
    line included (the request's task ends with them: nothing outlives it).

    One command: `command_id` and `correlation_id`; several: `command_ids` and
    `correlation_ids`.
    """
    ids = [str(c.command_id) for c in commands[:_IDS_MAX]]
    correlations = [str(c.correlation_id or c.command_id) for c in commands[:_IDS_MAX]]
    if len(commands) == 1:
        structlog.contextvars.bind_contextvars(command_id=ids[0], correlation_id=correlations[0])
    elif commands:
        structlog.contextvars.bind_contextvars(command_ids=ids, correlation_ids=correlations)


class RequestObserver:
    """ASGI middleware: each HTTP request counted and timed by its route's template when its
    answer starts (services/web/metrics.py), and logged once as it ends, also when it fails."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, counted = 500, False
        rid = request_id(scope)

        async def send_observed(message: Message) -> None:
            nonlocal status, counted
            if message["type"] == "http.response.start":
                status, counted = int(message["status"]), True
                count_request(scope, status, time.perf_counter() - started)
            await send(message)

        bound: dict[str, Any] = {"request_id": rid} if rid else {}
        with structlog.contextvars.bound_contextvars(**bound):
            try:
                await self.app(scope, receive, send_observed)
            finally:
                if not counted:
                    count_request(scope, status, time.perf_counter() - started)
                log.info(
                    "http_request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
