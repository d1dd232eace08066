"""Who a signed command is from: the key that signed it, as the log or an anchor says; pure.

The decider takes the actor of a command from its key, never from what the command says:

- the key must be registered in the log (`SigningKeyRegistered`) and not revoked, or be one of
  the decider's configured trust anchors (the gateway's key, its own) that the log has not
  revoked; otherwise, or when the signature does not verify, the command is `unauthenticated`;
- a `team` key acts as its principal: a payload without `actor` gets the principal, one naming
  anybody else (name, team or role), or naming a loader, is refused as `actor_mismatch`;
- a `gateway` key (the HTTP API, the CLI) asserts the actor it authenticated itself, so the
  payload's `actor` (and `loaded_by`) is taken as given;
- a `decider` key signs no command but its own registration.

Anchors bootstrap the registry: the gateway, when it starts, sends a `RegisterSigningKey` of
its own key signed by that key, which the decider accepts because the key is an anchor; so the
log shows every key that ever signed, from its first command on.
"""

from collections.abc import Mapping
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson

from events.ed25519 import decode_public_key, encode_public_key, key_id_of
from events.envelope import Actor
from events.signing import SignedCommand
from events.streams import key_stream_id
from services.domain.commands import (
    Command,
    RegisterSigningKey,
    command_document,
    parse_command,
    salvage_command_id,
)
from services.domain.decide import Rejected
from services.domain.rejections import Reason
from services.domain.state import AnyState, KeyState

AnchorKind = Literal["gateway", "decider"]
# The principals anchors act as: the registrations they send of themselves name them, and a
# decider key's only command (its own registration) must be in its name.
ANCHOR_PRINCIPALS: Mapping[AnchorKind, Actor] = {
    "gateway": Actor(name="rectrack gateway", team="rectrack", role="admin"),
    "decider": Actor(name="rectrack decider", team="rectrack", role="admin"),
}


class Unauthenticated(ValueError):
    """The command cannot be tied to a valid key: reason code `unauthenticated`."""


class ActorMismatch(ValueError):
    """A verified key's command names someone else: reason code `actor_mismatch`."""

    def __init__(self, detail: str, command: Command) -> None:
        super().__init__(detail)
        self.command = command


def anchor(public_key: bytes, kind: AnchorKind) -> KeyState:
    """A key the decider trusts by configuration, before (and beside) the log's registry."""
    return KeyState(
        key_id=key_id_of(public_key),
        public_key=public_key,
        principal=ANCHOR_PRINCIPALS[kind],
        kind=kind,
    )


def signing_key(
    key_id: str, streams: Mapping[str, AnyState], anchors: Mapping[str, KeyState]
) -> KeyState:
    """The valid key with this id; Unauthenticated when it is unknown or revoked.

    The log decides first: a revocation there ends an anchor too.
    """
    state = streams.get(key_stream_id(key_id))
    if isinstance(state, KeyState):
        if state.revoked:
            raise Unauthenticated(f"key {key_id} is revoked")
        return state
    found = anchors.get(key_id)
    if found is None:
        raise Unauthenticated(f"key {key_id} is not registered")
    return found


def _who(actor: Actor) -> str:
    return f"{actor.name} ({actor.team}, {actor.role})"


def command_of(signed: SignedCommand, key: KeyState) -> Command:
    """The command a verified payload holds, its actor as the key allows.

    Raises InvalidCommand (the payload is no valid command), ActorMismatch or Unauthenticated.
    """
    doc: Any = command_document(signed.payload.encode("utf-8"))
    if key.kind == "gateway":
        return parse_command(doc)
    if isinstance(doc, dict) and doc.get("actor") is None:
        doc = {**doc, "actor": key.principal.model_dump()}
    command = parse_command(doc)
    if key.kind == "decider" and not _own_registration(command, key):
        raise Unauthenticated(
            f"key {key.key_id} is a decider key: it signs no command but its own registration"
        )
    if command.actor != key.principal or command.loaded_by is not None:
        claimed = _who(command.actor)
        if command.loaded_by is not None:
            claimed += f", loaded by {_who(command.loaded_by)}"
        raise ActorMismatch(
            f"key {key.key_id} is {_who(key.principal)}'s and acts only as them; the command "
            f"names {claimed}: leave actor out, or name the key's principal",
            command,
        )
    return command


def _own_registration(command: Command, key: KeyState) -> bool:
    data = command.data
    return (
        isinstance(data, RegisterSigningKey)
        and data.kind == key.kind
        and decode_public_key(data.public_key) == key.public_key
    )


def misregistered_anchor(command: Command, anchors: Mapping[str, KeyState]) -> Rejected | None:
    """The refusal of a registration that would give an anchor's key another kind or owner.

    The log decides over configuration, so whoever registered an anchor's public key first,
    as something else, would decide what the anchor may do: only the anchor's own
    registration (its kind, its principal) is accepted for its key.
    """
    data = command.data
    if not isinstance(data, RegisterSigningKey):
        return None
    found = anchors.get(data.key_id)
    if found is None:
        return None
    principal = data.principal
    if data.kind == found.kind and (principal.name, principal.team, principal.role) == (
        found.principal.name,
        found.principal.team,
        found.principal.role,
    ):
        return None
    return Rejected(
        Reason.FORBIDDEN,
        f"key {data.key_id} is a configured {found.kind} anchor: it is registered only as "
        f"itself ({found.kind}, {_who(found.principal)})",
    )


def self_registration(public_key: bytes, kind: AnchorKind) -> Command:
    """The command by which an anchor registers itself, signed by itself.

    Its command id derives from the key, so every start of the gateway sends the same command,
    and the decider answers all but the first with the first outcome. (A decider key may sign
    its own; the decider does not send one yet: its Kafka principal may not write commands.)
    """
    principal = ANCHOR_PRINCIPALS[kind]
    key_id = key_id_of(public_key)
    return parse_command(
        {
            "type": "RegisterSigningKey",
            "command_id": str(uuid5(NAMESPACE_URL, f"rectrack:self-registration:{key_id}")),
            "actor": principal.model_dump(),
            "data": {
                "public_key": encode_public_key(public_key),
                "principal": principal.model_dump(),
                "kind": kind,
            },
        }
    )


def claimed_command_id(raw: bytes) -> UUID | None:
    """The command id a refused message says it has, read without trusting it.

    Only for the outcome of a refusal, which names no sender and so can never answer, nor
    take the id from, anybody's real command.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("payload"), str):
        try:
            doc = orjson.loads(doc["payload"])
        except orjson.JSONDecodeError:
            return None
    return salvage_command_id(doc)
