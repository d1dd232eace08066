"""Helpers for tests that drive the API over HTTP."""

import asyncpg

from events.envelope import Actor
from services.web.tokens import create_token


async def token(pool: asyncpg.Pool, role: str, team: str = "hmics") -> str:
    """A fresh bearer token for an actor of this role and team."""
    async with pool.acquire() as conn:
        _, secret = await create_token(conn, Actor(name=f"{role} user", team=team, role=role))
    return secret


async def bearer(pool: asyncpg.Pool, role: str, team: str = "hmics") -> dict[str, str]:
    """Authorization header of a fresh token."""
    return {"Authorization": f"Bearer {await token(pool, role, team)}"}
