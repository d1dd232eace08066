"""Rendering the browser's pages: the templates over the shared look, and who is signed in."""

import functools
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from services.look import environment
from services.web.links import is_web_url


@functools.cache
def templates() -> jinja2.Environment:
    """The pages' templates over the shared layout; `is web_url` guards every stored link."""
    env = environment("services.web")
    env.tests["web_url"] = is_web_url
    return env


def page(
    request: Request,
    name: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page for this request: the layout shows the session's user, its sign-out form (with the
    session's CSRF token) and anything the session had to show once."""
    session = getattr(request.state, "session", None)
    flash = session.flash if session else None
    html = templates().get_template(name).render(session=session, flash=flash, **context)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def form_state(request: Request, form: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The values and errors a refused form left in the session for its page (else empty)."""
    session = getattr(request.state, "session", None)
    flash = session.flash if session else None
    if flash and flash.get("form") == form:
        return dict(flash.get("values") or {}), dict(flash.get("errors") or {})
    return {}, {}
