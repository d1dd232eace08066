"""Who is asking: bearer tokens for the API, a server-side session for the browser.

The session cookie (services/web/sessions.py) is accepted by reads and by the browser's own
forms, which check a CSRF token; `POST /commands` and every other API write take only the
bearer header, so a cookie can never be used for a cross-site write there.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from events.envelope import Actor
from services.web.ratelimit import TokenBuckets, retry_after
from services.web.sessions import COOKIE, Lifetimes, Session, current_session
from services.web.tokens import actor_for, token_hash

__all__ = ["COOKIE", "PageActor", "PageSession", "ReaderActor", "SignedIn", "WriterActor"]

bearer = HTTPBearer(auto_error=False, description="A token from `rectrack tokens create`.")


async def token_actor(request: Request, token: str | None) -> Actor | None:
    """The actor a token stands for, or None."""
    if not token:
        return None
    async with request.app.state.pool.acquire() as conn:
        return await actor_for(conn, token)


async def session_of(request: Request, *, take_flash: bool = False) -> Session | None:
    """The live session the request's cookie names (also kept in `request.state.session`)."""
    secret = request.cookies.get(COOKIE)
    session = None
    if secret:
        async with request.app.state.pool.acquire() as conn:
            session = await current_session(
                conn, secret, Lifetimes.of(request.app.state.settings), take_flash=take_flash
            )
    request.state.session = session
    return session


def _unauthorised() -> HTTPException:
    return HTTPException(
        401, "a valid bearer token is needed", headers={"WWW-Authenticate": "Bearer"}
    )


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def require_writer(request: Request, credentials: Credentials) -> Actor:
    """The actor of a write: always from the token, never from the body; writes are rate-limited.

    The limit is per token and applies before the body is read, so a flood costs one lookup each.
    """
    actor = await token_actor(request, credentials.credentials if credentials else None)
    if actor is None or credentials is None:
        raise _unauthorised()
    buckets: TokenBuckets | None = request.app.state.write_buckets
    if buckets is not None:
        wait = buckets.take(token_hash(credentials.credentials))
        if wait > 0:
            raise HTTPException(
                429,
                "too many writes with this token; retry later",
                headers={"Retry-After": retry_after(wait)},
            )
    return actor


async def require_reader(request: Request, credentials: Credentials) -> Actor | None:
    """Reads need any valid token or a signed-in browser, unless reads are open to the public."""
    if credentials:
        actor = await token_actor(request, credentials.credentials)
    else:
        session = await session_of(request)
        actor = session.actor if session else None
    if actor is None and not request.app.state.settings.public_reads:
        raise _unauthorised()
    return actor


def _to_sign_in(request: Request) -> HTTPException:
    # A cookie that names no live session: it ended (signed out elsewhere, idle, too old, or
    # its token revoked), and the sign-in page says so.
    where = "/login?ended=1" if request.cookies.get(COOKIE) else "/login"
    return HTTPException(303, "sign in first", headers={"Location": where})


async def page_session(request: Request) -> Session | None:
    """Pages: the browser's session (None when reads are public and nobody signed in). A GET
    takes what the session had to show once."""
    session = await session_of(request, take_flash=request.method == "GET")
    if session is None and not request.app.state.settings.public_reads:
        raise _to_sign_in(request)
    return session


async def signed_in(request: Request) -> Session:
    """Forms: a live session, whatever the settings say about reads."""
    session = await session_of(request, take_flash=request.method == "GET")
    if session is None:
        raise _to_sign_in(request)
    return session


async def require_page_reader(request: Request) -> Actor | None:
    """The actor of a page's session (for routes that need only who is reading)."""
    session = await page_session(request)
    return session.actor if session else None


WriterActor = Annotated[Actor, Depends(require_writer)]
ReaderActor = Annotated[Actor | None, Depends(require_reader)]
PageActor = Annotated[Actor | None, Depends(require_page_reader)]
PageSession = Annotated[Session | None, Depends(page_session)]
SignedIn = Annotated[Session, Depends(signed_in)]
