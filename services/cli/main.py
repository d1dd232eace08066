"""The `rectrack` application: every command, grouped by concern in this package."""

import os
from collections.abc import Callable

import typer
from rich.text import Text

from infra.kafka_clients import KafkaCredentialsError
from infra.settings import DatabaseCredentialsError, KafkaSettingsError
from infra.topic_policy import TopicCheckError
from services.cli import admin, backup, data, reports, stack, teams
from services.cli.output import err

app = typer.Typer(
    help="Track inspectorate recommendations from publication to closure.", no_args_is_help=True
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


def main() -> None:
    """Console script entry point."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    try:
        app()
    except (
        DatabaseCredentialsError,
        KafkaCredentialsError,
        KafkaSettingsError,
        TopicCheckError,
    ) as exc:
        # Not a bug to report with a traceback: the message names the file or setting to fix
        # (TopicCheckError: each topic weaker than the settings, and the setting).
        err.print(Text("error:", style="red"), str(exc))
        raise SystemExit(1) from None
