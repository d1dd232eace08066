"""Team systems: their principals (`principals create|list|revoke`) and `send`.

The work is done in services/decider/principals.py, services/decider/team_client.py and
infra/team_credentials.py; here options become arguments and results become lines.
"""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from rich.table import Table

from events.envelope import Actor
from events.outcome import Outcome
from infra.kafka_security import KafkaAdminError, PrincipalInfo, list_principals
from infra.team_credentials import CredentialsFileError, TeamCredentials, read_credentials_file
from services.cli.admin import RoleChoice
from services.cli.failures import kafka_problem, unreachable_kafka_of
from services.cli.output import cli_user, console, err, fail, load_settings
from services.decider.principals import (
    InvalidFields,
    PrincipalError,
    SigningKey,
    create_team_principal,
    keys_of,
    read_signing_keys,
    revoke,
    team_principal,
)
from services.decider.team_client import Outgoing, TeamClient, read_send_file

principals_app = typer.Typer(
    help="Team systems' Kafka principals and the signing keys they act with.",
    no_args_is_help=True,
)

DEFAULT_REASON = "revoked with `rectrack principals revoke`"


def _admin() -> Actor:
    """The CLI's user, as the admin who registers and revokes keys."""
    return Actor(name=cli_user(), team="cli", role="admin")


def _options(exc: InvalidFields) -> str:
    return "; ".join(f"--{field}: {message}" for field, message in exc.problems.items())


@principals_app.command("create")
def principals_create(
    name: Annotated[
        str,
        typer.Option(
            help="The team system's name: its Kafka principal, and who its key acts as "
            "(lowercase letters, digits and hyphens)."
        ),
    ],
    team: Annotated[str, typer.Option(help="The team its commands act for.")],
    role: Annotated[RoleChoice, typer.Option(help="The role its commands act with.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The credentials file to write (mode 0600; an existing file is never replaced).",
        ),
    ],
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the key's registration.")
    ] = 60.0,
) -> None:
    """Create a team system's Kafka principal and registered signing key, in one file.

    The key is registered in the log to NAME (TEAM, ROLE); the password and the private key
    are written to the credentials file only.
    """
    try:
        principal = team_principal(name, team, role.value)
    except InvalidFields as exc:
        raise fail(_options(exc)) from exc
    try:
        credentials = asyncio.run(
            create_team_principal(
                load_settings(), principal, output, admin=_admin(), timeout=timeout
            )
        )
    except FileExistsError:
        raise fail(f"-o: {output} exists already; nothing was created") from None
    except (PrincipalError, KafkaAdminError) as exc:
        raise fail(str(exc)) from None
    except KafkaError as exc:
        raise fail(f"{kafka_problem(exc)}; nothing was created") from None
    console.print(
        f"team principal {principal.name} ({principal.team}, {principal.role}) with signing "
        f"key {credentials.key_id}",
        soft_wrap=True,
    )
    console.print(
        f"credentials in {output} (mode 0600): hand them over as a secret", soft_wrap=True
    )


def _key_rows(
    principals: list[PrincipalInfo], keys: dict[str, SigningKey]
) -> list[tuple[str, ...]]:
    """Each team principal's keys, then the team keys of no Kafka login (a revoked
    principal's, or registered for people who send through the API)."""
    logins = {p.name for p in principals if p.kind == "team"}
    listed = [k for name in sorted(logins) for k in keys_of(keys.values(), name)]
    others = sorted(
        (k for k in keys.values() if k.kind == "team" and k.principal.name not in logins),
        key=lambda k: (k.principal.name, k.registered_at),
    )
    return [
        (
            k.principal.name,
            k.key_id,
            k.principal.team,
            k.principal.role,
            f"{k.registered_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
        )
        for k in [*listed, *others]
    ]


@principals_app.command("list")
def principals_list() -> None:
    """List the Kafka principals and the team principals' signing keys.

    Keys as the log records them, registered and revoked: each team principal's, then the
    team keys of principals with no Kafka login (revoked ones, or people's keys).
    """
    settings = load_settings()

    async def read() -> tuple[list[PrincipalInfo], dict[str, SigningKey]]:
        return await list_principals(settings), await read_signing_keys(settings)

    try:
        principals, keys = asyncio.run(read())
    except (KafkaAdminError, KafkaError) as exc:
        raise fail(kafka_problem(exc)) from None
    # Names and key ids are printed whole, never cut: they are what `revoke` takes.
    logins = Table(title="Kafka principals")
    logins.add_column("principal", no_wrap=True)
    logins.add_column("kind")
    logins.add_column("mechanisms")
    for p in principals:
        logins.add_row(p.name, p.kind, ", ".join(p.mechanisms))
    console.print(logins)
    signing = Table(title="Team signing keys")
    signing.add_column("principal", no_wrap=True)
    signing.add_column("key_id", no_wrap=True)
    for heading in ("team", "role", "registered", "revoked"):
        signing.add_column(heading, overflow="fold")
    for row in _key_rows(principals, keys):
        signing.add_row(*row)
    console.print(signing)


@principals_app.command("revoke")
def principals_revoke(
    ident: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="A principal's name (its Kafka login and every key registered to it), or a "
            "signing key's id (that key only).",
        ),
    ],
    reason: Annotated[
        str, typer.Option(help="Why, as the log records it with each key's revocation.")
    ] = DEFAULT_REASON,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the keys' revocations.")
    ] = 60.0,
) -> None:
    """Revoke a team principal (its login and keys), or one signing key."""
    try:
        done = asyncio.run(
            revoke(load_settings(), ident, admin=_admin(), reason=reason, timeout=timeout)
        )
    except InvalidFields as exc:
        raise fail(_options(exc)) from exc
    except (PrincipalError, KafkaAdminError) as exc:
        raise fail(str(exc)) from None
    except KafkaError as exc:
        raise fail(kafka_problem(exc)) from None
    if done.principal is not None:
        if done.login_removed:
            console.print(f"principal {done.principal}: Kafka login and ACLs removed")
        else:
            console.print(f"principal {done.principal} had no Kafka login any more")
        if not done.keys:
            console.print(f"no live signing key was registered to {done.principal}")
    failed = False
    for key_id, why in done.keys.items():
        if why is None:
            console.print(f"key {key_id} revoked")
        else:
            failed = True
            err.print(f"error: key {key_id} is not revoked: {why}")
    if failed:
        raise typer.Exit(1)


def _show(command: Outgoing, outcome: Outcome) -> None:
    line = f"line {command.line}: {command.command_id} {outcome.status}"
    if outcome.status != "accepted":
        line += f" {outcome.reason}: {outcome.detail}"
    console.print(line, soft_wrap=True)


async def _send(
    credentials: TeamCredentials, commands: list[Outgoing], timeout: float
) -> dict[int, Outcome]:
    client = TeamClient(credentials, load_settings().topics)
    await client.start(timeout)
    try:
        await client.send(commands)
        found = {}
        async for command, outcome in client.outcomes(commands, timeout=timeout):
            _show(command, outcome)
            found[command.line] = outcome
        return found
    finally:
        await client.stop()


def send(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="One command per line (a JSON object); blank lines are skipped.",
        ),
    ],
    credentials: Annotated[
        Path,
        typer.Option(help="The team system's credentials file (`rectrack principals create`)."),
    ],
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the outcomes once all are sent.")
    ] = 60.0,
) -> None:
    """Send commands as a team system: signed with its key, as its Kafka principal.

    Prints each outcome as it arrives. Exits 1 when a line is bad or a command is rejected,
    2 when some got no outcome in time.
    """
    try:
        team = read_credentials_file(credentials)
    except CredentialsFileError as exc:
        raise fail(f"--credentials: {exc}") from None
    commands, bad = read_send_file(file)
    for problem in bad:
        err.print(f"error: {problem} (not sent)", soft_wrap=True)
    outcomes: dict[int, Outcome] = {}
    if commands:
        try:
            outcomes = asyncio.run(_send(team, commands, timeout))
        except (KafkaError, TimeoutError) as exc:
            said = unreachable_kafka_of(team.kafka.bootstrap_servers, str(credentials))
            raise fail(said or f"Kafka, as {team.username}: {exc or type(exc).__name__}") from None
    missing = [c for c in commands if c.line not in outcomes]
    for c in missing:
        err.print(f"line {c.line}: {c.command_id} no outcome within {timeout:g}s")
    rejected = sum(o.status != "accepted" for o in outcomes.values())
    console.print(
        f"{len(commands)} sent: {len(outcomes) - rejected} accepted, {rejected} rejected, "
        f"{len(missing)} without an outcome; {len(bad)} bad line(s) not sent"
    )
    if bad or rejected:
        raise typer.Exit(1)
    if missing:
        raise typer.Exit(2)
