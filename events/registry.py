"""Bytes in and out of the log: the only place events are parsed or dumped."""

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from events.committee import CommitteeUpdateRecorded, committee_name_not_recorded
from events.envelope import Envelope, EventData
from events.inspection import InspectionPublished
from events.integrity import HASH_FIELD, SEAL_FIELD, seal_document
from events.keys import SigningKeyRegistered, SigningKeyRevoked
from events.outcome import Outcome
from events.recommendation import (
    ClosureProposed,
    EvidenceSubmitted,
    InspectorateDecisionRecorded,
    OwnerAssigned,
    ProgressReported,
    RecommendationIssued,
    TargetDateSet,
    evidence_submitted_v1_to_v2,
    team_name_not_recorded,
)

EVENT_TYPES: dict[str, type[EventData]] = {
    cls.__name__: cls
    for cls in (
        InspectionPublished,
        RecommendationIssued,
        OwnerAssigned,
        TargetDateSet,
        ProgressReported,
        EvidenceSubmitted,
        ClosureProposed,
        InspectorateDecisionRecorded,
        CommitteeUpdateRecorded,
        SigningKeyRegistered,
        SigningKeyRevoked,
    )
}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# The current schema_version of each event type whose model has changed (absent: 1), and for
# each older (type, schema_version) the function turning that version's data into the next.
SCHEMA_VERSIONS: dict[str, int] = {
    "CommitteeUpdateRecorded": 2,
    "OwnerAssigned": 2,
    # 2: each document also says its size and media type (issue 16: evidence documents).
    "EvidenceSubmitted": 2,
}
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    # 2: the name as given beside the derived id (issue 16, natural input; events/names.py).
    ("CommitteeUpdateRecorded", 1): committee_name_not_recorded,
    ("OwnerAssigned", 1): team_name_not_recorded,
    ("EvidenceSubmitted", 1): evidence_submitted_v1_to_v2,
}


def current_version(event_type: str) -> int:
    """The schema_version new events of this type are written with."""
    return SCHEMA_VERSIONS.get(event_type, 1)


class UnreadableEvent(ValueError):
    """Bytes on the events topic that are not a valid event of a known type."""


def event_type_name(data: EventData) -> str:
    """The wire name of an event data model."""
    return type(data).__name__


def dump_event(envelope: Envelope) -> bytes:
    """Canonical JSON bytes of an envelope (sorted keys, so hashes are stable)."""
    return orjson.dumps(envelope.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def seal_and_dump(envelope: Envelope, prev_hash: str | None) -> tuple[Envelope, bytes]:
    """The sealed envelope and its bytes, as `seal` then `dump_event` give them.

    The envelope is dumped once: the document the hash covers is the one written, which
    saves the decider a second dump and two model copies per event.
    """
    doc = seal_document(envelope.model_dump(mode="json"), prev_hash)
    sealed = envelope.model_copy(update={"prev_hash": prev_hash, HASH_FIELD: doc[HASH_FIELD]})
    return sealed, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _upcast(event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    while version < current_version(event_type):
        data = UPCASTERS[(event_type, version)](data)
        version += 1
    return data


def parse_event_data(event_type: str, data: dict[str, Any]) -> EventData:
    """Typed data of an event stored elsewhere (for example a read model's JSON column)."""
    return EVENT_TYPES[event_type].model_validate(data)


def parse_event(raw: bytes) -> Envelope:
    """Parse bytes from the log into an envelope whose data is upcast to the current version."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UnreadableEvent(f"unreadable event: {exc}") from exc
    return parse_event_doc(doc)


def parse_event_doc(doc: Any) -> Envelope:
    """Like parse_event, for bytes the caller has already decoded; `doc` is left unchanged.

    The decider's seal (events/seals.py) is not part of the envelope: it is dropped here, and
    checked by the readers that authenticate events (the projector, `rectrack verify`).
    """
    try:
        event_type = doc["type"]
        model = EVENT_TYPES[event_type]
        version = int(doc.get("schema_version", 1))
        data = model.model_validate(_upcast(event_type, version, doc["data"]))
        fields = {**doc, "data": data, "schema_version": current_version(event_type)}
        fields.pop(SEAL_FIELD, None)
        return Envelope.model_validate(fields)
    except (AttributeError, KeyError, TypeError, ValueError, ValidationError) as exc:
        raise UnreadableEvent(f"unreadable event: {exc}") from exc


def dump_outcome(outcome: Outcome) -> bytes:
    """JSON bytes of an outcome."""
    return orjson.dumps(outcome.model_dump(mode="json"))


def parse_outcome(raw: bytes) -> Outcome:
    """Parse an outcome from the outcomes topic."""
    return Outcome.model_validate_json(raw)
