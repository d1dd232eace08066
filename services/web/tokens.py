"""API tokens: created once and shown once, stored as a hash, revocable."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from events.envelope import Actor
from events.types import Role

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


class TokenRecord(BaseModel):
    """A token's row as a backup keeps it: its hash, never the token itself.

    The hash is enough for a restored token to authenticate again, and it cannot be turned
    back into the token; a backup is still sensitive (it lists who may do what).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_id: UUID
    name: Annotated[str, StringConstraints(min_length=1)]
    team: Annotated[str, StringConstraints(min_length=1)]
    role: Role
    token_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None


@dataclass(frozen=True)
class RestoredTokens:
    """What a restore changed: tokens added, live tokens the backup says are revoked (now
    revoked), and tokens already present as the backup has them."""

    added: int
    revoked: int
    unchanged: int


_RECORD_COLUMNS = "token_id, name, team, role, token_hash, created_at, revoked_at"


async def token_records(conn: asyncpg.Connection) -> list[TokenRecord]:
    """Every token's row, oldest first (for a backup)."""
    rows = await conn.fetch(
        f"SELECT {_RECORD_COLUMNS} FROM api_tokens ORDER BY created_at, token_id"  # noqa: S608
    )
    return [TokenRecord.model_validate(dict(r)) for r in rows]


async def restore_token_records(
    conn: asyncpg.Connection, records: list[TokenRecord]
) -> RestoredTokens:
    """Put backed-up tokens back, in one transaction.

    A token missing here is added as the backup has it; one present stays, except that a
    revocation in the backup applies to it. A restore never brings a revoked token back.
    """
    async with conn.transaction():
        await conn.execute("LOCK TABLE api_tokens IN SHARE ROW EXCLUSIVE MODE")
        present = {
            r["token_id"]: r["revoked_at"]
            for r in await conn.fetch("SELECT token_id, revoked_at FROM api_tokens")
        }
        new = [r for r in records if r.token_id not in present]
        to_revoke = [
            r
            for r in records
            if r.revoked_at is not None and r.token_id in present and present[r.token_id] is None
        ]
        await conn.executemany(
            f"INSERT INTO api_tokens ({_RECORD_COLUMNS}) "  # noqa: S608
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (r.token_id, r.name, r.team, r.role, r.token_hash, r.created_at, r.revoked_at)
                for r in new
            ],
        )
        await conn.executemany(
            "UPDATE api_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL",
            [(r.token_id, r.revoked_at) for r in to_revoke],
        )
    return RestoredTokens(len(new), len(to_revoke), len(records) - len(new) - len(to_revoke))


async def actor_for(conn: asyncpg.Connection, token: str) -> Actor | None:
    """The actor a live token stands for, or None."""
    row = await conn.fetchrow(
        "SELECT name, team, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token),
    )
    return Actor.model_validate(dict(row)) if row else None
