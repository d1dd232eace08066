"""Who is asking: bearer tokens for the API, a cookie for the read-only dashboard."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from events.envelope import Actor
from services.web.ratelimit import TokenBuckets, retry_after
from services.web.tokens import actor_for, token_hash

COOKIE = "rectrack_token"

bearer = HTTPBearer(auto_error=False, description="A token from `rectrack tokens create`.")


async def token_actor(request: Request, token: str | None) -> Actor | None:
    """The actor a token stands for, or None."""
    if not token:
        return None
    async with request.app.state.pool.acquire() as conn:
        return await actor_for(conn, token)


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
    """Reads need any valid token, unless the instance opens reads to the public."""
    token = credentials.credentials if credentials else request.cookies.get(COOKIE)
    actor = await token_actor(request, token)
    if actor is None and not request.app.state.settings.public_reads:
        raise _unauthorised()
    return actor


async def require_page_reader(request: Request) -> Actor | None:
    """Dashboard pages: the login cookie (reads only, so a cookie carries no write risk)."""
    actor = await token_actor(request, request.cookies.get(COOKIE))
    if actor is None and not request.app.state.settings.public_reads:
        raise HTTPException(303, "log in first", headers={"Location": "/login"})
    return actor


WriterActor = Annotated[Actor, Depends(require_writer)]
ReaderActor = Annotated[Actor | None, Depends(require_reader)]
PageActor = Annotated[Actor | None, Depends(require_page_reader)]
