"""Browser sessions: made at sign-in with an API token, kept in PostgreSQL, ended for good.

A session is a row of `web_sessions` (migration 008) keyed by the SHA-256 of a random cookie
value, so the table never holds a usable cookie. It stands for the token it was made with: the
actor (name, team, role) is read from `api_tokens` on every request, so revoking the token ends
its sessions at once. It also ends when signed out (the row is deleted), after
`Settings.session_idle_minutes` without a request, and `Settings.session_hours` after sign-in
whatever happens; expired rows are deleted at each sign-in.

Every form carries the session's CSRF token (a synchronizer token, random per session, compared
in constant time). The sign-in form comes before any session, so it carries a token of its own
that must equal a short-lived cookie set with the form (double submit): another site can
neither read that cookie nor make the browser send it (SameSite=Strict).

The cookies are HttpOnly and SameSite=Strict, and Secure when the request came over https or
`RECTRACK_SECURE_COOKIES` says TLS ends in front of us.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from fastapi import Request, Response

from events.envelope import Actor
from infra.settings import Settings
from services.web.tokens import token_hash

COOKIE = "rectrack_session"
LOGIN_COOKIE = "rectrack_signin"
CSRF_FIELD = "csrf_token"
# The sign-in form's own token lives as long as someone may take to paste a token.
LOGIN_COOKIE_SECONDS = 3600


@dataclass(frozen=True)
class Lifetimes:
    """How long a session lasts: without a request (idle), and at most (absolute)."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Settings) -> "Lifetimes":
        """The lifetimes the settings ask for."""
        return cls(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_hours),
        )


@dataclass(frozen=True)
class Session:
    """A live browser session: who, the CSRF token of its forms, what to show once."""

    key: str
    actor: Actor
    token_id: UUID
    csrf_token: str
    created_at: datetime
    flash: dict[str, Any] | None


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def purge_expired(conn: asyncpg.Connection, lifetimes: Lifetimes) -> None:
    """Delete sessions past either lifetime (they are refused anyway; this keeps it small)."""
    await conn.execute(
        "DELETE FROM web_sessions WHERE last_seen_at <= now() - $1::interval "
        "OR created_at <= now() - $2::interval",
        lifetimes.idle,
        lifetimes.absolute,
    )


async def start_session(
    conn: asyncpg.Connection, token: str, lifetimes: Lifetimes
) -> tuple[str, Session] | None:
    """A new session for a live API token: (the cookie's value, the session); None if the token
    is not live. Always a new session, so a session id known before sign-in is worth nothing."""
    row = await conn.fetchrow(
        "SELECT token_id, name, team, role FROM api_tokens "
        "WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token),
    )
    if row is None:
        return None
    await purge_expired(conn, lifetimes)
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    created: datetime = await conn.fetchval(
        "INSERT INTO web_sessions (session_hash, token_id, csrf_token) VALUES ($1, $2, $3) "
        "RETURNING created_at",
        _key(secret),
        row["token_id"],
        csrf,
    )
    actor = Actor(name=row["name"], team=row["team"], role=row["role"])
    return secret, Session(_key(secret), actor, row["token_id"], csrf, created, None)


_CURRENT = """
WITH found AS (
    SELECT s.session_hash, s.flash
    FROM web_sessions s JOIN api_tokens t USING (token_id)
    WHERE s.session_hash = $1 AND t.revoked_at IS NULL
      AND s.last_seen_at > now() - $2::interval AND s.created_at > now() - $3::interval
    FOR UPDATE OF s
)
UPDATE web_sessions s
SET last_seen_at = now(), flash = CASE WHEN $4 THEN NULL ELSE s.flash END
FROM found, api_tokens t
WHERE s.session_hash = found.session_hash AND t.token_id = s.token_id
RETURNING s.token_id, s.csrf_token, s.created_at, found.flash, t.name, t.team, t.role
"""


async def current_session(
    conn: asyncpg.Connection, secret: str, lifetimes: Lifetimes, *, take_flash: bool = False
) -> Session | None:
    """The live session a cookie names, its idle clock restarted; None if it has ended.

    With `take_flash`, what it had to show once is handed over and forgotten (a page's GET).
    """
    row = await conn.fetchrow(
        _CURRENT, _key(secret), lifetimes.idle, lifetimes.absolute, take_flash
    )
    if row is None:
        return None
    return Session(
        key=_key(secret),
        actor=Actor(name=row["name"], team=row["team"], role=row["role"]),
        token_id=row["token_id"],
        csrf_token=row["csrf_token"],
        created_at=row["created_at"],
        flash=orjson.loads(row["flash"]) if row["flash"] else None,
    )


async def end_session(conn: asyncpg.Connection, secret: str) -> None:
    """Sign out: the session is deleted, so its cookie is worth nothing from now on."""
    await conn.execute("DELETE FROM web_sessions WHERE session_hash = $1", _key(secret))


async def set_flash(conn: asyncpg.Connection, session: Session, flash: dict[str, Any]) -> None:
    """What the next page of this session shows once (POST-redirect-GET)."""
    await conn.execute(
        "UPDATE web_sessions SET flash = $2::jsonb WHERE session_hash = $1",
        session.key,
        orjson.dumps(flash).decode(),
    )


def csrf_matches(expected: str, given: object) -> bool:
    """A form's CSRF token equals the expected one (constant time)."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected, given)


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure over https, or when the settings say TLS ends in front of us."""
    settings: Settings = request.app.state.settings
    return request.url.scheme == "https" or settings.secure_cookies


def set_session_cookie(request: Request, response: Response, secret: str) -> None:
    """The session's cookie: HttpOnly, SameSite=Strict, Secure over TLS, gone at the absolute
    lifetime (the server ends the session then, and at idling, anyway)."""
    settings: Settings = request.app.state.settings
    response.set_cookie(
        COOKIE,
        secret,
        max_age=settings.session_hours * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    """Tell the browser to forget the session's cookie."""
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=secure_cookies(request)
    )


def new_signin_token() -> str:
    """A fresh CSRF token for the sign-in form (also set as its cookie: `set_signin_cookie`)."""
    return secrets.token_urlsafe(32)


def set_signin_cookie(request: Request, response: Response, token: str) -> None:
    """The sign-in form's token as a short-lived cookie (double submit)."""
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_COOKIE_SECONDS,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


def clear_signin_cookie(request: Request, response: Response) -> None:
    """The sign-in form's token is used once."""
    response.delete_cookie(
        LOGIN_COOKIE,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
