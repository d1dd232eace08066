"""Commands as they arrive (topic, load file, HTTP): strict validation, field-named errors.

Every free-text field is `ShortText` (one line) or `LongText` (prose), which refuse control
characters; links are http(s) only; every date is a `BusinessDate` (1900 to today + 50 years).
These bounds live here, at the door, and not in the event models: see `events/types.py`.

Where a person naturally types a name, a `NameOrId` takes the name or the id (a committee, an
owner team): the command keeps it as given, and its id is derived from it by
`events.names.derive_id`. Ids that stay ids (`IdInput`: inspection ids) refuse a name, with the
id the same derivation suggests.
"""

from typing import Any, Literal
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from events.documents import MediaType
from events.ed25519 import decode_public_key, key_id_of
from events.envelope import Actor
from events.names import IdInput, NameOrId, derive_id
from events.signing import KeyId, KeyKind, PublicKeyText
from events.streams import committee_stream_id, key_stream_id, recommendation_id
from events.types import (
    BusinessDate,
    Decision,
    DelayReason,
    DeliveryStatus,
    HttpUrlText,
    Kind,
    LongText,
    Role,
    Sha256,
    ShortText,
)

MAX_COMMAND_BYTES = 256 * 1024
# The largest integer every JSON reader holds exactly (2^53 - 1): a document's size in bytes.
MAX_JSON_INTEGER = 2**53 - 1


class ActorInput(BaseModel):
    """Who a command says acts or loads it: single-line name and team, a known role."""

    # from_attributes: the API passes the Actor of its bearer token, not a dict.
    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    name: ShortText
    team: ShortText
    role: Role


class CommandData(BaseModel):
    """Base of every command's data; unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: ShortText | None = None


class PublishInspection(CommandData):
    """Record that an inspectorate published an inspection."""

    inspection_id: IdInput
    title: ShortText
    inspectorate: ShortText
    published_on: BusinessDate
    inspection_type: ShortText | None = None
    url: HttpUrlText | None = None


class IssueRecommendation(CommandData):
    """Record a recommendation (or area for development) of a published inspection."""

    inspection_id: IdInput
    number: int = Field(ge=1, le=10_000)
    text: LongText
    kind: Kind = "recommendation"
    tracked: bool = True


class AssignOwner(CommandData):
    """Hand a recommendation to a team, given by its name or its id."""

    recommendation_id: ShortText
    team: NameOrId
    owner_role: ShortText
    note: LongText | None = None

    @property
    def team_id(self) -> str:
        """The owner team's id, derived from the team as given."""
        return derive_id(self.team)


class SetTargetDate(CommandData):
    """Set or revise the date by which the recommendation should be delivered."""

    recommendation_id: ShortText
    target_date: BusinessDate
    reason: LongText
    agreed_with_inspectorate: bool


class ReportProgress(CommandData):
    """Report the current position and whether delivery is on track."""

    recommendation_id: ShortText
    position: LongText
    delivery_status: DeliveryStatus
    delay_reason: DelayReason | None = None

    @model_validator(mode="after")
    def _delay_reason_matches_status(self) -> "ReportProgress":
        if self.delivery_status == "delayed" and self.delay_reason is None:
            raise ValueError("delay_reason is required when delivery_status is delayed")
        if self.delivery_status == "on_track" and self.delay_reason is not None:
            raise ValueError("delay_reason must be empty when delivery_status is on_track")
        return self


class DocumentInput(BaseModel):
    """A document cited as evidence, as a command names it (the event's `Document`).

    `size` and `media_type` say what rectrack stored under `sha256`: the HTTP upload
    (`POST /recommendations/{id}/evidence`) always fills them from the bytes it stored. A
    command may leave both out and cite a document by name and hash only, as commands did
    before rectrack stored documents; `rectrack verify` then does not expect rectrack to hold it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ShortText
    sha256: Sha256
    size: int | None = Field(default=None, ge=1, le=MAX_JSON_INTEGER)
    media_type: MediaType | None = None


class SubmitEvidence(CommandData):
    """Submit evidence of improvement."""

    recommendation_id: ShortText
    evidence_id: ShortText
    summary: LongText
    documents: tuple[DocumentInput, ...] = ()


class ProposeClosure(CommandData):
    """Propose the recommendation for closure, citing submitted evidence."""

    recommendation_id: ShortText
    rationale: LongText
    evidence_ids: tuple[ShortText, ...] = Field(min_length=1)


class RecordInspectorateDecision(CommandData):
    """Record what the inspectorate decided about the recommendation."""

    recommendation_id: ShortText
    decision: Decision
    rationale: LongText


class RecordCommitteeUpdate(CommandData):
    """Record that a committee, given by its name or its id, received an update."""

    committee: NameOrId
    meeting_date: BusinessDate
    title: ShortText

    @property
    def committee_id(self) -> str:
        """The committee's id, derived from the committee as given; names its stream."""
        return derive_id(self.committee)


class RegisterSigningKey(CommandData):
    """Register a public key to a principal (admin only): commands it signs act as them.

    A `team` key's commands act as its principal and nobody else; a `gateway` key may assert
    any actor (for the API and the CLI, which authenticate people themselves); a `decider`
    key signs no command but its own registration. See events/signing.py.
    """

    public_key: PublicKeyText
    principal: ActorInput
    kind: KeyKind = "team"

    @property
    def key_id(self) -> str:
        """The id of the key being registered."""
        return key_id_of(decode_public_key(self.public_key))


class RevokeSigningKey(CommandData):
    """Revoke a key (admin only): every command it signs from now on is refused."""

    key_id: KeyId
    reason: LongText


COMMAND_TYPES: dict[str, type[CommandData]] = {
    cls.__name__: cls
    for cls in (
        PublishInspection,
        IssueRecommendation,
        AssignOwner,
        SetTargetDate,
        ReportProgress,
        SubmitEvidence,
        ProposeClosure,
        RecordInspectorateDecision,
        RecordCommitteeUpdate,
        RegisterSigningKey,
        RevokeSigningKey,
    )
}

CommandType = Literal[
    "PublishInspection",
    "IssueRecommendation",
    "AssignOwner",
    "SetTargetDate",
    "ReportProgress",
    "SubmitEvidence",
    "ProposeClosure",
    "RecordInspectorateDecision",
    "RecordCommitteeUpdate",
    "RegisterSigningKey",
    "RevokeSigningKey",
]


class Command(BaseModel):
    """One command in the contract's format, with its data parsed to the type's model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: CommandType
    data: CommandData
    command_id: UUID = Field(default_factory=uuid4)
    correlation_id: UUID | None = None
    effective_date: BusinessDate | None = None
    expected_version: int | None = Field(default=None, ge=0)
    actor: Actor
    # Who loaded the file this command came from (an admin); the actor is the line's author.
    loaded_by: Actor | None = None

    @property
    def stream_id(self) -> str:
        """The stream this command writes to."""
        return stream_id_of(self.data)


def stream_id_of(data: CommandData) -> str:
    """The stream a command's data addresses."""
    match data:
        case PublishInspection():
            return data.inspection_id
        case IssueRecommendation():
            return recommendation_id(data.inspection_id, data.kind, data.number)
        case RecordCommitteeUpdate():
            return committee_stream_id(data.committee_id)
        case RegisterSigningKey():
            return key_stream_id(data.key_id)
        case RevokeSigningKey():
            return key_stream_id(data.key_id)
    rec_id: str = getattr(data, "recommendation_id")  # noqa: B009 - every other command has one
    return rec_id


class InvalidCommand(ValueError):
    """A command that cannot be parsed; names each bad field and why."""

    def __init__(self, errors: list[dict[str, str]], command_id: UUID | None = None) -> None:
        self.errors = errors
        self.command_id = command_id
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


def _field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    return [
        {
            "field": (prefix + ".".join(str(p) for p in err["loc"])).rstrip(".") or "(command)",
            "reason": err["msg"],
        }
        for err in exc.errors()
    ]


def _salvage_command_id(doc: object) -> UUID | None:
    if isinstance(doc, dict):
        try:
            return UUID(str(doc.get("command_id")))
        except ValueError:
            return None
    return None


def parse_command(doc: object) -> Command:
    """Validate a decoded command document; raise InvalidCommand naming the fields at fault."""
    if not isinstance(doc, dict):
        raise InvalidCommand([{"field": "(command)", "reason": "must be a JSON object"}])
    # The command id is salvaged only for a failing command: valid ones parse it anyway.
    type_name = doc.get("type")
    model = COMMAND_TYPES.get(type_name) if isinstance(type_name, str) else None
    if model is None:
        known = ", ".join(COMMAND_TYPES)
        reason = f"unknown command type {type_name!r}; expected one of {known}"
        raise InvalidCommand([{"field": "type", "reason": reason}], _salvage_command_id(doc))
    errors: list[dict[str, str]] = []
    try:
        data = model.model_validate(doc.get("data"))
    except ValidationError as exc:
        errors += _field_errors(exc, "data.")
    people = _people(doc, errors)
    if errors:
        raise InvalidCommand(errors, _salvage_command_id(doc))
    try:
        return Command.model_validate({**doc, "data": data, **people})
    except ValidationError as exc:
        raise InvalidCommand(_field_errors(exc), _salvage_command_id(doc)) from exc


def _people(doc: dict[Any, Any], errors: list[dict[str, str]]) -> dict[str, Actor]:
    """The actor and loader of a command, checked as strictly as its data.

    `Actor` is also the envelope's model, which must keep reading what the log holds; a
    command's people are new input, so they pass `ActorInput` first. The API hands in the
    token's Actor, which is checked the same way.
    """
    people: dict[str, Actor] = {}
    for name in ("actor", "loaded_by"):
        given = doc.get(name)
        if given is None:
            continue  # the Command model says whether it is required
        try:
            checked = ActorInput.model_validate(given)
        except ValidationError as exc:
            errors += _field_errors(exc, f"{name}.")
        else:
            people[name] = Actor(name=checked.name, team=checked.team, role=checked.role)
    return people


def command_document(raw: bytes) -> Any:
    """The decoded JSON of a command's bytes, refusing oversized input and bytes not JSON."""
    if len(raw) > MAX_COMMAND_BYTES:
        raise InvalidCommand(
            [{"field": "(command)", "reason": f"larger than {MAX_COMMAND_BYTES} bytes"}]
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidCommand([{"field": "(command)", "reason": f"not JSON: {exc}"}]) from exc


def parse_command_bytes(raw: bytes) -> Command:
    """Parse a command from wire bytes (JSON), refusing oversized input."""
    return parse_command(command_document(raw))


def salvage_command_id(doc: object) -> UUID | None:
    """The command id a document names, if it names a valid one (for refusals' outcomes)."""
    return _salvage_command_id(doc)


def dump_command(command: Command) -> bytes:
    """Wire bytes of a command (the data dumped by its own model)."""
    doc = command.model_dump(mode="json", exclude={"data"}, exclude_none=True)
    doc["data"] = command.data.model_dump(mode="json", exclude_none=True)
    return orjson.dumps(doc)
