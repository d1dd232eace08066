"""asyncpg pools bound to one schema, and the plain-SQL migrations applied at start."""

import re
from importlib import resources

import asyncpg
import structlog

from infra.settings import DatabaseCredentialsError, Settings
from infra.tracing import TRACING, trace_statements

log = structlog.get_logger(__name__)


_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def quote_schema(name: str) -> str:
    """A schema name as a quoted identifier, refusing anything but plain lower-case names."""
    if not _PLAIN_NAME.match(name):
        raise ValueError(f"schema names are lower-case letters, digits and _; got {name!r}")
    return f'"{name}"'


async def create_pool(settings: Settings, *, min_size: int = 1, max_size: int = 5) -> asyncpg.Pool:
    """A pool whose connections see only this instance's schema."""
    await _ensure_schema(settings)
    pool: asyncpg.Pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size,
        server_settings={
            "search_path": settings.db_schema,
            "application_name": "rectrack",
            # Report queries sort and aggregate ~100k rows; the 4MB default spills to disk.
            "work_mem": "64MB",
            # Optional filters ($n IS NULL OR ...) only fold away in a custom plan; a generic
            # plan, chosen after five runs of a prepared statement, was twice as slow.
            "plan_cache_mode": "force_custom_plan",
        },
        # Traced, each statement run inside a span gets one; off, asyncpg times nothing.
        init=trace_statements if TRACING.on else None,
    )
    return pool


async def _ensure_schema(settings: Settings) -> None:
    try:
        conn = await asyncpg.connect(settings.database_url)
    except (
        asyncpg.InvalidAuthorizationSpecificationError,  # a wrong password, an unknown role
        asyncpg.InsufficientPrivilegeError,  # no CONNECT on that database
    ) as exc:
        where = (
            "check the user and password in DATABASE_URL"
            if settings.external_database_url
            else f"the app role's password is in {settings.app_password_file}; `rectrack up` "
            "sets it again on the server"
        )
        raise DatabaseCredentialsError(
            f"PostgreSQL at {settings.database_url_redacted} refused us: {exc}; {where}"
        ) from None
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema(settings.db_schema)}")
    finally:
        await conn.close()


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("projections").joinpath("migrations")
    files = sorted(f.name for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(name, folder.joinpath(name).read_text()) for name in files]


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply migrations not yet applied, each in its own transaction; return their names."""
    applied: list[str] = []
    async with pool.acquire() as conn:
        # One migrator at a time per database, whichever process starts first.
        await conn.execute("SELECT pg_advisory_lock(4242)")
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            for name, sql in _migrations():
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(4242)")
    if applied:
        log.info("migrations_applied", migrations=applied)
    return applied


async def analyze(conn: asyncpg.Connection, schema: str) -> None:
    """Gather planner statistics for every table of a schema.

    A schema filled in bulk (a replay) has none until autovacuum gets round to it, and until
    then the planner guesses: the as-of report ran at half speed on a freshly replayed schema.
    """
    tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    for row in tables:
        await conn.execute(f"ANALYZE {quote_schema(schema)}.{quote_schema(row['tablename'])}")
