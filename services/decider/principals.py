"""Team systems' principals: a Kafka login and a signing key in the log, made and revoked as one.

A team system (a department's case tool, say) sends commands straight to the commands topic:
it logs in to Kafka as its own team principal (infra/kafka_security.py: it may write commands
and read outcomes, in consumer groups `NAME.…`), and it signs every command with an Ed25519
key that an admin registered in the log to a principal of the same name (`RegisterSigningKey`,
stream `key:<key_id>`), so the decider takes the command's actor from the key. Both are made
together here, handed over in one credentials file (infra/team_credentials.py), and revoked
together.

The key registry is read from the log itself (the events of the `key:` streams), as the
decider knows it; the admin commands go through the gateway as the CLI's admin.
"""

import asyncio
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import TypeAdapter, ValidationError

from events.ed25519 import KEY_ID, encode_public_key, public_key_of
from events.envelope import Actor, Envelope
from events.keys import SigningKeyRegistered, SigningKeyRevoked
from events.outcome import Outcome
from events.registry import UnreadableEvent, parse_event
from events.streams import KEY_PREFIX
from events.types import LongText
from infra.kafka_clients import read_topic
from infra.kafka_security import (
    PrincipalKind,
    check_name,
    create_principal,
    revoke_principal,
)
from infra.settings import Settings
from infra.team_credentials import TeamCredentials, write_credentials_file
from services.decider.gateway import CommandGateway
from services.domain.commands import ActorInput, Command, parse_command


class PrincipalError(RuntimeError):
    """What an admin asked for cannot be done; the message says why (and holds no secret)."""


class InvalidFields(ValueError):
    """Values that cannot be used (a principal's name, team, role; a reason): one message per
    field, by the field's name."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.problems.items()))


def team_principal(name: str, team: str, role: str) -> Actor:
    """The actor a team system's key acts as; InvalidFields naming each field at fault.

    The name is also the Kafka principal's, so it must be a short lowercase slug that the app
    does not keep for itself; team and role follow the rules of any command's actor.
    """
    problems: dict[str, str] = {}
    try:
        check_name(name)
    except ValueError as exc:
        problems["name"] = str(exc)
    try:
        checked = ActorInput.model_validate({"name": name, "team": team, "role": role})
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "name"
            problems.setdefault(field, error["msg"])
    if problems:
        raise InvalidFields(problems)
    return Actor(name=checked.name, team=checked.team, role=checked.role)


@dataclass(frozen=True)
class SigningKey:
    """A key of the log's registry, for people: whose it is and when it was (un)usable."""

    key_id: str
    principal: Actor
    kind: str
    registered_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    @property
    def revoked(self) -> bool:
        """Commands it signs are refused."""
        return self.revoked_at is not None


def fold_signing_keys(events: Iterable[Envelope]) -> dict[str, SigningKey]:
    """The registry the key streams' events make, by key id, in the order they were recorded."""
    keys: dict[str, SigningKey] = {}
    for event in events:
        data = event.data
        if isinstance(data, SigningKeyRegistered):
            keys.setdefault(
                data.key_id,
                SigningKey(data.key_id, data.principal, data.kind, event.recorded_at),
            )
        elif isinstance(data, SigningKeyRevoked) and data.key_id in keys:
            key = keys[data.key_id]
            if not key.revoked:
                keys[data.key_id] = SigningKey(
                    key.key_id,
                    key.principal,
                    key.kind,
                    key.registered_at,
                    event.recorded_at,
                    data.reason,
                )
    return keys


def keys_of(keys: Iterable[SigningKey], name: str) -> list[SigningKey]:
    """The team keys registered to the principal of this name, oldest first."""
    return sorted(
        (k for k in keys if k.kind == "team" and k.principal.name == name),
        key=lambda k: k.registered_at,
    )


async def read_signing_keys(settings: Settings) -> dict[str, SigningKey]:
    """The key registry as the log holds it now: the events of the `key:` streams.

    Every event is keyed by its stream's partition key, which for a key stream is the stream
    id itself, so only those records are parsed (and kept) of the whole events topic.
    """
    prefix = KEY_PREFIX.encode()
    records = await read_topic(
        settings, settings.topics.events, keep=lambda r: (r.key or b"").startswith(prefix)
    )
    events = []
    for record in records:
        try:
            event = parse_event(record.value or b"")
        except UnreadableEvent:
            continue  # `rectrack verify` names it; it registers nothing
        if event.stream_id.startswith(KEY_PREFIX):
            events.append(event)
    return fold_signing_keys(events)


def _register(public_key: bytes, principal: Actor, admin: Actor) -> Command:
    return parse_command(
        {
            "type": "RegisterSigningKey",
            "actor": admin.model_dump(),
            "data": {
                "public_key": encode_public_key(public_key),
                "principal": principal.model_dump(),
                "kind": "team",
            },
        }
    )


def _revoke(key_id: str, reason: str, admin: Actor) -> Command:
    return parse_command(
        {
            "type": "RevokeSigningKey",
            "actor": admin.model_dump(),
            "data": {"key_id": key_id, "reason": reason},
        }
    )


def _refusal(outcome: Outcome | None) -> str | None:
    """Why a command did not take effect, or None when it did."""
    if outcome is None:
        return "no outcome in time (is the decider running? `rectrack status`)"
    if outcome.status != "accepted":
        return f"{outcome.reason}: {outcome.detail}"
    return None


async def create_team_principal(
    settings: Settings, principal: Actor, out: Path, *, admin: Actor, timeout: float
) -> TeamCredentials:
    """A Kafka team principal and a registered signing key, in a new 0600 file at `out`.

    `principal.name` names both. Nothing is left behind when something fails: not the file,
    not the Kafka login; a registration that got no outcome in time is revoked as well, in
    case it is decided later. FileExistsError when anything is at `out` (checked first, and
    again when the file is written); KafkaAdminError when a Kafka principal of that name exists
    already (it is left as it is); PrincipalError when the registration is not accepted.
    """
    if await asyncio.to_thread(os.path.lexists, out):
        raise FileExistsError(out)
    key = Ed25519PrivateKey.generate()
    gateway = CommandGateway(settings.for_component("api"))
    await gateway.start()  # before anything is made: the decider's topics are reachable
    try:
        credentials = TeamCredentials(
            await create_principal(settings, principal.name, PrincipalKind.team), key
        )
        try:
            await asyncio.to_thread(write_credentials_file, out, credentials)
            try:
                registration = _register(public_key_of(key), principal, admin)
                outcome = (await gateway.submit([registration], timeout=timeout)).get(
                    registration.command_id
                )
                if (why := _refusal(outcome)) is not None:
                    if outcome is None:
                        await gateway.send(
                            [_revoke(credentials.key_id, "its registration timed out", admin)]
                        )
                    raise PrincipalError(
                        f"the registration of key {credentials.key_id} to {principal.name} "
                        f"was not accepted ({why}); the Kafka principal is removed again"
                    )
            except BaseException:
                await asyncio.to_thread(out.unlink, missing_ok=True)
                raise
        except BaseException:
            await revoke_principal(settings, principal.name)
            raise
    finally:
        await gateway.stop()
    return credentials


@dataclass(frozen=True)
class Revocation:
    """What `revoke` did: the Kafka login it removed (if any) and each key it revoked."""

    principal: str | None
    login_removed: bool
    keys: dict[str, str | None]  # key id: None when revoked, else why not


async def revoke(
    settings: Settings, ident: str, *, admin: Actor, reason: str, timeout: float
) -> Revocation:
    """Revoke a team principal (its Kafka login and ACLs, then every live key registered to
    it) or, given a key id of the registry, only that key.

    InvalidFields when the reason is no valid text (nothing is done then); PrincipalError
    when `ident` names no live principal or key, or names a key that is not a
    team's (the gateway's or the decider's own keys are rotated, not revoked from here).
    """
    try:
        TypeAdapter(LongText).validate_python(reason)
    except ValidationError as exc:
        raise InvalidFields({"reason": exc.errors()[0]["msg"]}) from None
    keys = await read_signing_keys(settings)
    if KEY_ID.fullmatch(ident) and ident in keys:
        key = keys[ident]
        if key.kind != "team":
            raise PrincipalError(
                f"key {ident} is the stack's own {key.kind} key, not a team's: it is not "
                "revoked from here"
            )
        if key.revoked:
            when = f"{key.revoked_at:%Y-%m-%d %H:%M}"
            raise PrincipalError(f"key {ident} was revoked already, at {when}")
        revoked = await _revoke_keys(settings, [ident], admin, reason, timeout)
        return Revocation(None, False, revoked)
    try:
        check_name(ident)
    except ValueError as exc:
        raise PrincipalError(f"no principal and no signing key {ident!r} ({exc})") from None
    live = [k.key_id for k in keys_of(keys.values(), ident) if not k.revoked]
    removed = await revoke_principal(settings, ident)
    if not removed and not live:
        raise PrincipalError(f"no principal and no live signing key {ident!r}")
    return Revocation(ident, removed, await _revoke_keys(settings, live, admin, reason, timeout))


async def _revoke_keys(
    settings: Settings, key_ids: Sequence[str], admin: Actor, reason: str, timeout: float
) -> dict[str, str | None]:
    if not key_ids:
        return {}
    commands = {key_id: _revoke(key_id, reason, admin) for key_id in key_ids}
    gateway = CommandGateway(settings.for_component("api"))
    await gateway.start()
    try:
        outcomes = await gateway.submit(list(commands.values()), timeout=timeout)
    finally:
        await gateway.stop()
    return {key_id: _refusal(outcomes.get(c.command_id)) for key_id, c in commands.items()}
