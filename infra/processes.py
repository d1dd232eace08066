"""Background processes with pid files: start detached, find alive, stop, check ports."""

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class PortTaken(RuntimeError):
    """A port rectrack needs is already in use by something else."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free(port: int, what: str) -> None:
    """Raise PortTaken naming the port when it is already listening."""
    if port_open(port):
        raise PortTaken(
            f"port {port} (needed for {what}) is already in use; stop what holds it or "
            "choose another port with the environment variable in the README"
        )


def free_port(low: int = 20000, high: int = 32000) -> int:
    """A free port below the kernel's ephemeral range (32768+).

    A port the kernel picks with bind(0) comes from the ephemeral range, where outgoing client
    connections may take it again before the server that was meant to listen on it starts.
    """
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {low} and {high}")


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().split(")")[-1].split()[0] != "Z"
    return True


def read_pid(pid_file: Path) -> int | None:
    """The pid in a pid file if that process is alive; a stale file is removed."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def spawn(
    argv: Sequence[str], *, pid_file: Path, log_file: Path, env: dict[str, str] | None = None
) -> int:
    """Start a detached process (own session) writing to a log file; record its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


def stop_pid(pid: int, *, timeout: float = 20.0) -> None:
    """SIGTERM, wait, then SIGKILL if it does not go."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.25
) -> None:
    """Poll until check() is true or raise TimeoutError naming what we waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} did not become ready within {timeout:.0f}s")
