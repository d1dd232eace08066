"""Finding 7: PostgreSQL ran with trust authentication as a superuser, so any local user could
connect and mint an admin token with `rectrack tokens create`, which needed nothing but reaching
the database. Now every connection needs a password (SCRAM), the passwords are files of mode 0600
in RECTRACK_HOME, and the app logs in as a role that can create neither roles nor databases.
"""

import stat
import uuid
from pathlib import Path

import asyncpg
import pytest

from infra.postgres import LocalPostgres
from infra.settings import Settings
from tests.cli import rectrack


async def refused(settings: Settings, *, host: str, user: str, password: str | None) -> bool:
    """Whether the server turns this login away for its password."""
    try:
        conn = await asyncpg.connect(
            host=host,
            port=settings.pg_port,
            user=user,
            password=password,
            database="postgres",
            # No ~/.pgpass may supply a password behind the test's back.
            passfile=settings.home / "no-such-pgpass",
        )
    except asyncpg.InvalidPasswordError:
        return True
    await conn.close()
    return False


async def test_finding_7_the_database_wants_passwords_and_the_app_is_no_superuser(
    settings: Settings,
    run_env: dict[str, str],
    pool: asyncpg.Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.external_database_url is None, "finding 7 is about the local database"
    monkeypatch.delenv("PGPASSWORD", raising=False)
    pg = LocalPostgres(settings)

    # 1. Nobody gets in without the password: not over TCP, not over the unix socket (in the
    # data directory), not as the superuser with a guessed password.
    for host in ("127.0.0.1", str(pg.data_dir)):
        assert await refused(settings, host=host, user="postgres", password=None), (
            f"the superuser got in without a password via {host}"
        )
        assert await refused(settings, host=host, user="rectrack_app", password=None), (
            f"the app role got in without a password via {host}"
        )
    assert await refused(settings, host="127.0.0.1", user="postgres", password="postgres")

    # 2. The passwords are files only their owner may read.
    secrets = {}
    for path in (pg.superuser_password_file, pg.app_password_file):
        assert path.parent == settings.home and path.is_file(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is not mode 0600"
        secrets[path.name] = path.read_text().strip()
    assert all(len(secret) >= 32 for secret in secrets.values())

    # 3. The app's role may log in and use its own database, and nothing more.
    async with pool.acquire() as conn:
        me = await conn.fetchrow(
            "SELECT current_user AS name, current_database() AS db, rolsuper, rolcreaterole, "
            "rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert me is not None
        assert (me["name"], me["db"]) == ("rectrack_app", "rectrack")
        assert not any(me[f] for f in ("rolsuper", "rolcreaterole", "rolcreatedb")), dict(me)
        assert not (me["rolreplication"] or me["rolbypassrls"]), dict(me)
        owner = await conn.fetchval(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1",
            settings.db_schema,
        )
        assert owner == "rectrack_app"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"CREATE ROLE intruder_{uuid.uuid4().hex[:8]} SUPERUSER LOGIN")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER ROLE rectrack_app SUPERUSER")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # no CONNECT on other databases
        await asyncpg.connect(settings.database_url.rsplit("/", 1)[0] + "/postgres")

    # 4. A local user who can reach the port but not the password file mints no token: the CLI
    # says which file it could not read (or that the server refused), and nothing is stored.
    name = f"intruder-{uuid.uuid4().hex[:8]}"
    create = ("tokens", "create", "--name", name, "--team", "x", "--role", "admin")
    own_home = tmp_path / "home-without-the-password-file"
    own_home.mkdir()
    without_file = {**run_env, "RECTRACK_HOME": str(own_home)}
    as_superuser = {
        **run_env,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{settings.pg_port}/postgres",
    }
    for env, says in (
        (without_file, f"cannot read the database password in {own_home}/postgres-app.password"),
        (as_superuser, 'password authentication failed for user "postgres"'),
    ):
        env.pop("PGPASSWORD", None)
        done = rectrack(env, *create, check=False)
        assert done.returncode == 1, f"a token was minted: {done.stdout} {done.stderr}"
        assert says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "rt_" not in done.stdout, done.stderr
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM api_tokens WHERE name = $1", name) == 0

    # 5. The app password is never shown: `rectrack status` redacts it, and no log holds either.
    status = rectrack(run_env, "status")
    assert "postgresql://rectrack_app:***@127.0.0.1" in status.stdout, status.stdout
    for path in [*settings.log_dir.rglob("*"), *(pg.data_dir / "log").rglob("*")]:
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(secret in text for secret in secrets.values()), path
    assert not any(s in status.stdout + status.stderr for s in secrets.values())
