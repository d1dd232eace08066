"""Walk a topic's events and every stream's hash chain; pure (the reading is the caller's)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from events.integrity import chain_break
from events.topics import Message


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
    """What walking the log found, and (filled by `rectrack verify`) what was not projected."""

    events: int = 0
    streams: int = 0
    breaks: list[Break] = field(default_factory=list)
    unprojected: list[Unprojected] = field(default_factory=list)


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


def walk(topic: str, messages: Iterable[Message], *, from_offset: int = 0) -> ChainReport:
    """Check versions, hashes and links of every stream. Breaks before from_offset are still
    followed (so the chain is known) but not reported."""
    heads: dict[str, tuple[int, str]] = {}
    report = ChainReport()
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        report.events += 1
        stream, reason = _check(m.value, heads)
        if reason is None:
            continue
        if m.offset >= from_offset:
            report.breaks.append(Break(topic, m.partition, m.offset, stream, reason))
    report.streams = len(heads)
    return report


def _check(raw: bytes, heads: dict[str, tuple[int, str]]) -> tuple[str | None, str | None]:
    try:
        doc = orjson.loads(raw)
        stream, version = stream_of(doc)
    except ValueError:  # orjson.JSONDecodeError is one
        return None, "not an event (unreadable JSON or no stream)"
    last_version, last_hash = heads.get(stream, (0, None))
    if version != last_version + 1:
        return stream, f"stream_version {version}, expected {last_version + 1}"
    reason = chain_break(doc, last_hash)
    if reason:
        return stream, reason
    heads[stream] = (version, str(doc["hash"]))  # only verified events extend the chain
    return stream, None
