"""The stack's processes as the benchmarks see them: started, and their peak memory."""

import asyncio
import os
import sys
from pathlib import Path

from infra.kafka_broker import LocalKafka
from infra.postgres import LocalPostgres
from infra.settings import Settings


async def start_component(env: dict[str, str], component: str) -> asyncio.subprocess.Process:
    """Start `rectrack run -c COMPONENT` (decider, projector or api) as a child process."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "run",
        "-c",
        component,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def peak_rss_mb(pid: int | None) -> float | None:
    """A live process's peak resident memory (VmHWM), in MB; None when it is not running."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def cpu_seconds(pid: int | None, *, children: bool = True) -> float | None:
    """CPU time (user + system) a live process has used, with its live child processes'
    (the decider's signature helper); None when it is not running."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    own = ticks / os.sysconf("SC_CLK_TCK")
    if not children:
        return own
    return own + sum(cpu_seconds(child, children=False) or 0.0 for child in _children(pid))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def infrastructure_memory(settings: Settings) -> dict[str, float | None]:
    """Peak RSS of the broker, the postmaster and its largest backend (None: not ours to see).

    A backend's RSS counts the shared buffers it touched, so backends are not summed.
    """
    postmaster = LocalPostgres(settings).pid()
    backends = [peak_rss_mb(p) for p in _children(postmaster)] if postmaster else []
    return {
        "kafka_broker": peak_rss_mb(LocalKafka(settings).pid()),
        "postgres_postmaster": peak_rss_mb(postmaster),
        "postgres_largest_backend": max((b for b in backends if b is not None), default=None),
    }
