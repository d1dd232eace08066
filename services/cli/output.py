"""What every command shares: settings, the consoles, failing with a message, a connection."""

import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from infra.logs import configure_logging
from infra.settings import Settings
from infra.tracing import configure_tracing
from projections.text import printable

T = TypeVar("T")


class PlainConsole(Console):
    """A console that prints every string as exactly its text.

    Everything the CLI prints may hold stored text (titles, positions, names, stream ids) that
    other people wrote. Rich would read it as markup ("[link=…]" made a hyperlink, "[/]" crashed
    `history` with MarkupError) and emoji codes (":warning:"), and pass an ESC on to the
    terminal. Every string rich renders (`print` arguments, table cells, titles, measurements)
    goes through `render_str`, so this one place turns markup and emoji off for all of them and
    shows control characters as U+FFFD. Our own colours are given as `style=`, never as markup.
    """

    def render_str(self, text: str, **options: Any) -> Text:
        options.update(markup=False, emoji=False)
        return super().render_str(printable(text), **options)


# A fixed width when not on a terminal keeps piped output and CI logs readable.
console = PlainConsole(width=None if sys.stdout.isatty() else 120, markup=False, emoji=False)
err = PlainConsole(stderr=True, soft_wrap=True, markup=False, emoji=False)


# Set by `rectrack run`: this process is a service, whose failure is a log record too.
SERVICE = {"running": False}


def load_settings(*, trace: bool = True) -> Settings:
    """Settings from the environment, with logging configured for a command: the libraries'
    records (aiokafka retrying a broker that is down) only with RECTRACK_LOG_LEVEL=debug; a
    failure is one line (services/cli/failures.py). `rectrack run` logs them as a service.

    With an OTLP endpoint set, the command traces as the service `cli` (the commands `load`
    and `send` produce carry their traces on). `trace=False` for the stack's commands: `run`
    starts components, each of which names itself in its traces.
    """
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format, quiet_libraries=True)
    if trace:
        configure_tracing("cli")
    return settings


def cli_user() -> str:
    """Who runs the CLI, as the commands it sends in their name record it."""
    return os.environ.get("USER") or "rectrack-cli"


def fail(message: str) -> typer.Exit:
    """Print an error; raise what this returns to exit with 1."""
    err.print(Text("error:", style="red"), message)
    return typer.Exit(1)


def write_json(payload: bytes) -> None:
    """JSON bytes to stdout, with a final newline."""
    sys.stdout.write(payload.decode() + "\n")


async def with_connection(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work` on one migrated database connection."""
    from infra.database import create_pool, migrate

    pool = await create_pool(settings, max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            return await work(conn)
    finally:
        await pool.close()
