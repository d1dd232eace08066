"""API tokens: created once and shown once, stored as a hash, revocable."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from events.envelope import Actor

TOKEN_PREFIX = "rt_"


def token_hash(token: str) -> str:
    """SHA-256 of a token: tokens are long random strings, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the token itself."""

    token_id: UUID
    name: str
    team: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


async def create_token(conn: asyncpg.Connection, actor: Actor) -> tuple[UUID, str]:
    """Store a new token for this actor; return its id and the token (shown once)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = uuid4()
    await conn.execute(
        "INSERT INTO api_tokens (token_id, name, team, role, token_hash) "
        "VALUES ($1, $2, $3, $4, $5)",
        token_id,
        actor.name,
        actor.team,
        actor.role,
        token_hash(token),
    )
    return token_id, token


async def list_tokens(conn: asyncpg.Connection) -> list[TokenInfo]:
    """Every token, newest first."""
    rows = await conn.fetch(
        "SELECT token_id, name, team, role, created_at, revoked_at FROM api_tokens "
        "ORDER BY created_at DESC"
    )
    return [TokenInfo(**dict(r)) for r in rows]


async def revoke_token(conn: asyncpg.Connection, token_id: UUID) -> bool:
    """Revoke a token; False when there is no such live token."""
    status: str = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_id = $1 AND revoked_at IS NULL",
        token_id,
    )
    return status.endswith(" 1")


async def actor_for(conn: asyncpg.Connection, token: str) -> Actor | None:
    """The actor a live token stands for, or None."""
    row = await conn.fetchrow(
        "SELECT name, team, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token),
    )
    return Actor.model_validate(dict(row)) if row else None
