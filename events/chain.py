"""Walk a topic's events, every stream's hash chain and the decider's seals; pure (the reading,
of the log and of the trusted keys, is the caller's)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from events.integrity import HASH_FIELD, SEAL_FIELD, chain_break, digest
from events.registry import UnreadableEvent, parse_event_doc
from events.seals import DeciderKeys, InvalidSeal, SealBook, unauthenticated_reason, verified_seal
from events.topics import Message

NOT_AN_EVENT = "not an event (unreadable JSON or no stream)"


@dataclass(frozen=True)
class Break:
    """Where the log stops verifying, and why."""

    topic: str
    partition: int
    offset: int
    stream_id: str | None
    reason: str


@dataclass(frozen=True)
class Unprojected:
    """An event a projection could not apply, as its projection_errors row names it.

    `in_chain`: the event continues its stream's chain, so the stream's head moved past it and
    the stream's later events were projected; otherwise it was refused as not part of its
    chain (forged or altered), and the chain walk names it as a break too.
    """

    topic: str
    partition: int
    offset: int
    stream_id: str | None
    stream_version: int | None
    in_chain: bool
    reason: str


@dataclass
class ChainReport:
    """What walking the log found, and (filled by `rectrack verify`) what was not projected.

    Each event is named at most once, by the first check it fails, in the projector's order:
    `unreadable` (no JSON, no stream), `breaks` (not its stream's next: forged, altered or
    out of place), `unauthenticated` (its stream's next, but listed by no seal of a trusted
    decider key; its stream's chain stays where it was), `unreadable` again (authenticated and
    in its chain, but no event model reads it: the chain moves past it, as the projector's
    stream head does).
    """

    events: int = 0
    streams: int = 0
    breaks: list[Break] = field(default_factory=list)
    unauthenticated: list[Break] = field(default_factory=list)
    unreadable: list[Break] = field(default_factory=list)
    unprojected: list[Unprojected] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """The log verifies: every event is readable, in its chain and authenticated."""
        return not (self.breaks or self.unauthenticated or self.unreadable)


@dataclass(frozen=True)
class Place:
    """Where a stored event says it belongs, read from its raw document (dates best effort)."""

    stream_id: str
    stream_version: int
    effective_date: date | None
    recorded_at: datetime | None


def stream_of(doc: Any) -> tuple[str, int]:
    """The stream id and version a decoded event document states, checked for type only.

    The projector's paths and the chain walk all take an event's place from here, so they
    agree on which bytes can be part of a chain. Raises ValueError when there is none.
    """
    try:
        stream_id, version = doc["stream_id"], doc["stream_version"]
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError("not an event: no stream_id and stream_version") from exc
    if not isinstance(stream_id, str) or isinstance(version, bool) or not isinstance(version, int):
        raise ValueError("not an event: stream_id must be text and stream_version an integer")
    return stream_id, version


def place_of(doc: Any) -> Place:
    """Where a decoded event document says it belongs, without the event model.

    Works on documents no model can parse (that is when it is needed); raises ValueError like
    `stream_of`.
    """
    stream_id, version = stream_of(doc)
    return Place(
        stream_id, version, _date(doc.get("effective_date")), _moment(doc.get("recorded_at"))
    )


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _moment(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def walk(
    topic: str, messages: Iterable[Message], *, keys: DeciderKeys, from_offset: int = 0
) -> ChainReport:
    """Check versions, hashes, links and seals of every stream, seals verified with `keys`.
    Events before from_offset are still followed (so chains and seals are known) but not
    reported."""
    heads: dict[str, tuple[int, str]] = {}
    seals = SealBook()
    report = ChainReport()
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        report.events += 1
        found = _check(m, heads, seals, keys)
        if found is None or m.offset < from_offset:
            continue
        kind, stream, reason = found
        getattr(report, kind).append(Break(topic, m.partition, m.offset, stream, reason))
    report.streams = len(heads)
    return report


def _check(
    m: Message, heads: dict[str, tuple[int, str]], seals: SealBook, keys: DeciderKeys
) -> tuple[str, str | None, str] | None:
    """(which list of the report, stream, reason) of an event that fails a check, else None."""
    try:
        doc = orjson.loads(m.value)
    except ValueError:  # orjson.JSONDecodeError is one
        return "unreadable", None, NOT_AN_EVENT
    own_seal = _record_seal(doc, m, seals, keys)
    try:
        stream, version = stream_of(doc)
    except ValueError:
        return "unreadable", None, NOT_AN_EVENT
    last_version, last_hash = heads.get(stream, (0, None))
    if version != last_version + 1:
        return "breaks", stream, f"stream_version {version}, expected {last_version + 1}"
    reason = chain_break(doc, last_hash)
    if reason:
        return "breaks", stream, reason
    if not seals.authenticates(doc[HASH_FIELD], m.partition, m.offset):
        return "unauthenticated", stream, unauthenticated_reason(own_seal, m.partition)
    heads[stream] = (version, str(doc[HASH_FIELD]))  # only verified events extend the chain
    try:
        parse_event_doc(doc)
    except UnreadableEvent as exc:
        return "unreadable", stream, str(exc)
    return None


def _record_seal(doc: Any, m: Message, seals: SealBook, keys: DeciderKeys) -> InvalidSeal | None:
    """Record the event's own seal if it verifies against its content; else say why not."""
    if not isinstance(doc, dict) or SEAL_FIELD not in doc:
        return None
    try:
        seal = verified_seal(doc[SEAL_FIELD], digest(doc), keys, m.partition, m.offset)
    except InvalidSeal as exc:
        return exc
    except TypeError:  # orjson cannot encode it again: no decider wrote it
        return InvalidSeal("its event cannot be hashed")
    seals.add(seal, m.partition, m.offset)
    return None
