"""Load an NDJSON file of commands through the gateway and summarise the outcomes."""

import asyncio
import sys
from collections import Counter
from pathlib import Path

from events.envelope import Actor
from events.outcome import Outcome
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from services.domain.commands import Command, InvalidCommand, parse_command_bytes

RESEND_ATTEMPTS = 3


def read_commands(
    path: Path, loaded_by: Actor | None
) -> tuple[list[tuple[int, Command]], list[tuple[int, str]]]:
    """The file's valid commands and its invalid lines, each with its line number."""
    commands, invalid = [], []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                command = parse_command_bytes(line)  # also refuses over-long lines
            except InvalidCommand as exc:
                invalid.append((number, str(exc)))
            else:
                commands.append((number, command.model_copy(update={"loaded_by": loaded_by})))
    return commands, invalid


async def submit_all(
    settings: Settings, commands: list[Command], *, timeout: float, quiet: bool
) -> dict[str, Outcome]:
    """Send commands and collect their outcomes, resending those that got none."""
    gateway = CommandGateway(settings)
    await gateway.start()
    try:
        shown = -1

        def show_decided(done: int, total: int) -> None:
            nonlocal shown
            if not quiet and (done == total or done - shown >= 50):
                shown = done
                sys.stderr.write(f"\r{done}/{total} decided")
                sys.stderr.flush()

        outcomes = {}
        pending = commands
        for _attempt in range(RESEND_ATTEMPTS):  # the same command_id, so resending is safe
            got = await gateway.submit(pending, timeout=timeout, progress=show_decided)
            outcomes.update({str(k): v for k, v in got.items()})
            pending = [c for c in pending if str(c.command_id) not in outcomes]
            if not pending:
                break
        if not quiet:
            sys.stderr.write("\n")
        return outcomes
    finally:
        await gateway.stop()


def load_file(
    settings: Settings,
    path: Path,
    *,
    loaded_by: Actor | None = None,
    timeout: float = 60.0,
    quiet: bool = False,
) -> dict[str, object]:
    """Send every command of an NDJSON file in order; summarise accepted and rejected."""
    numbered, invalid = read_commands(path, loaded_by)
    commands = [c for _, c in numbered]
    outcomes = asyncio.run(submit_all(settings, commands, timeout=timeout, quiet=quiet))
    rejected = [
        {"line": n, "command_id": str(c.command_id), "reason": o.reason, "detail": o.detail}
        for n, c in numbered
        if (o := outcomes.get(str(c.command_id))) and o.status == "rejected"
    ] + [
        {"line": n, "command_id": None, "reason": "invalid_command", "detail": d}
        for n, d in invalid
    ]
    rejected.sort(key=lambda r: int(str(r["line"])))
    return {
        "file": str(path),
        "commands": len(commands) + len(invalid),
        "accepted": sum(o.status == "accepted" for o in outcomes.values()),
        "rejected": len(rejected),
        "no_outcome": len(commands) - len(outcomes),
        "reasons": dict(Counter(str(r["reason"]) for r in rejected)),
        "rejections": rejected,
    }
