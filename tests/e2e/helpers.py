"""Helpers for tests that drive the API over HTTP."""

import re

import asyncpg
import httpx

from events.envelope import Actor
from services.web.sessions import COOKIE
from services.web.tokens import create_token


async def token(pool: asyncpg.Pool, role: str, team: str = "hmics") -> str:
    """A fresh bearer token for an actor of this role and team."""
    async with pool.acquire() as conn:
        _, secret = await create_token(conn, Actor(name=f"{role} user", team=team, role=role))
    return secret


async def bearer(pool: asyncpg.Pool, role: str, team: str = "hmics") -> dict[str, str]:
    """Authorization header of a fresh token."""
    return {"Authorization": f"Bearer {await token(pool, role, team)}"}


async def signed_in_cookies(api_url: str, secret: str) -> dict[str, str]:
    """The cookies of a browser session signed in with this token through the sign-in form."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as browser:
        form = await browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf, form.text[:500]
        signed = await browser.post("/login", data={"csrf_token": csrf[1], "token": secret})
        assert signed.status_code == 303 and signed.headers["location"] == "/", signed.text
        return {COOKIE: browser.cookies[COOKIE]}
