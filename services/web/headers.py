"""Security headers on every response, and the Content-Security-Policy of the pages.

The pages need no script at all, images of their own or `data:` URIs (the HTML paper embeds its
charts so), and one inline stylesheet: the shared layout's `<style>`, which stays inline because
the HTML paper is also a standalone file. It is allowed by its hash, computed from the layout as
rendered, so an edit of the CSS cannot silently unstyle the pages and no other inline style runs.
"""

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence

import jinja2
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def style_hashes(env: jinja2.Environment, template: str = "base.html.j2") -> list[str]:
    """CSP sources ('sha256-…') of every inline <style> of a template as it renders."""
    html = env.get_template(template).render()
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"
        for css in _STYLE.findall(html)
    ]


def content_security_policy(style_sources: Iterable[str]) -> str:
    """Nothing but this origin; no script; frames of this site nowhere."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'none'",
            "style-src " + " ".join(["'self'", *style_sources]),
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


# The API documentation page runs Swagger UI, this app's own copy (services/web/static), and
# nothing else: script from this origin only, never inline; it fetches /openapi.json.
API_DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def security_headers(csp: str) -> list[tuple[str, str]]:
    """The headers every response carries (JSON too: nosniff keeps a browser from guessing)."""
    return [
        ("Content-Security-Policy", csp),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        # For browsers older than frame-ancestors.
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]


class SecurityHeaders:
    """ASGI middleware: adds the headers to every response that does not set its own."""

    def __init__(self, app: ASGIApp, headers: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self.headers = list(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
