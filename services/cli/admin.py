"""Administration: API tokens and the subscribers' contract."""

import asyncio
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, get_args
from uuid import UUID

import orjson
import typer
from pydantic import ValidationError

from events.envelope import Actor
from events.types import Role
from infra.settings import Settings
from services.cli.output import console, err, fail, load_settings, with_connection
from services.domain.commands import ActorInput

tokens_app = typer.Typer(help="Bearer tokens of the HTTP API.", no_args_is_help=True)
schema_app = typer.Typer(help="The subscribers' contract.", no_args_is_help=True)

# typer offers choices from an Enum; the roles themselves are defined once, in events.types.
RoleChoice = StrEnum("RoleChoice", {role: role for role in get_args(Role)})  # type: ignore[misc]


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="Who the token is for.")],
    team: Annotated[str, typer.Option(help="Their team.")],
    role: Annotated[RoleChoice, typer.Option(help="What they may do.")],
) -> None:
    """Create a token and print it once; only its hash is stored."""
    from services.web.tokens import create_token

    try:
        # The same rules as a command's actor: a token's holder acts in every command it sends.
        checked = ActorInput(name=name, team=team, role=role.value)
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise fail(problems) from exc
    actor = Actor(name=checked.name, team=checked.team, role=checked.role)
    token_id, token = asyncio.run(
        with_connection(load_settings(), lambda conn: create_token(conn, actor))
    )
    err.print(f"token {token_id} for {name} ({team}, {role.value}); it is shown only now:")
    sys.stdout.write(token + "\n")


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (never the tokens themselves)."""
    from rich.table import Table

    from services.web.tokens import list_tokens

    rows = asyncio.run(with_connection(load_settings(), list_tokens))
    table = Table("name", "team", "role", "created", "revoked")
    # The id is what `tokens revoke` takes: never cut short, however narrow the terminal.
    table.add_column("token_id", no_wrap=True, min_width=36)
    for t in rows:
        revoked = f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-"
        table.add_row(
            t.name, t.team, t.role, f"{t.created_at:%Y-%m-%d %H:%M}", revoked, str(t.token_id)
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[UUID, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: it stops working at once."""
    from services.web.tokens import revoke_token

    revoked = asyncio.run(with_connection(load_settings(), lambda c: revoke_token(c, token_id)))
    if not revoked:
        raise fail(f"no live token {token_id}")
    console.print(f"revoked {token_id}")


@schema_app.command("export")
def schema_export(
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("contract"),
) -> None:
    """Write asyncapi.json and a JSON Schema per event type (schemas/NAME.json)."""
    from events.contract import asyncapi_document, event_schemas

    settings = Settings.from_env()
    (out / "schemas").mkdir(parents=True, exist_ok=True)
    document = asyncapi_document(settings.topics, settings.bootstrap_servers)
    (out / "asyncapi.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    for name, schema in event_schemas().items():
        (out / "schemas" / f"{name}.json").write_bytes(
            orjson.dumps(schema, option=orjson.OPT_INDENT_2)
        )
    console.print(f"wrote {out / 'asyncapi.json'} and {len(event_schemas())} event schemas")
