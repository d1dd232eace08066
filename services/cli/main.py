"""The `rectrack` application: every command, grouped by concern in this package."""

import os
import sys
from collections.abc import Callable
from typing import Annotated

import structlog
import typer
from rich.text import Text

from services.cli import admin, backup, data, reports, stack, teams
from services.cli.failures import explain, quiet_shutdown
from services.cli.output import SERVICE, err

app = typer.Typer(
    help="Track inspectorate recommendations from publication to closure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.topics_app, name="topics")
app.add_typer(admin.tokens_app, name="tokens")
app.add_typer(admin.schema_app, name="schema")
app.add_typer(teams.principals_app, name="principals")
COMMANDS: tuple[Callable[..., None], ...] = (
    stack.up,
    stack.down,
    stack.status,
    stack.run,
    data.load,
    reports.report,
    reports.history,
    reports.handover,
    data.replay,
    reports.paper,
    data.verify,
    data.demo,
    teams.send,
    backup.backup,
    backup.restore,
)
for command in COMMANDS:
    app.command()(command)


@app.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of any failure.")
    ] = False,
) -> None:
    """Track inspectorate recommendations from publication to closure."""
    # main() reads --debug itself: a failure may come before or after this runs.


def main() -> None:
    """Console script entry point: a known failure is one line and exit 1, no traceback."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    debug = "--debug" in sys.argv[1:]
    try:
        app()
    except Exception as exc:
        message = explain(exc)
        if message is None or debug:
            raise
        if SERVICE["running"]:
            structlog.get_logger("rectrack").error("failed", reason=message)
        else:
            err.print(Text("error:", style="red"), message)
        quiet_shutdown()
        raise SystemExit(1) from None
