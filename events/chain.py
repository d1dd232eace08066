"""Walk a topic's events and every stream's hash chain; pure (the reading is the caller's)."""

from collections.abc import Iterable
from dataclasses import dataclass, field

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


@dataclass
class ChainReport:
    """What walking the log found."""

    events: int = 0
    streams: int = 0
    breaks: list[Break] = field(default_factory=list)


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
        stream, version = str(doc["stream_id"]), int(doc["stream_version"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None, "not an event (unreadable JSON or no stream)"
    last_version, last_hash = heads.get(stream, (0, None))
    if version != last_version + 1:
        return stream, f"stream_version {version}, expected {last_version + 1}"
    reason = chain_break(doc, last_hash)
    if reason:
        return stream, reason
    heads[stream] = (version, str(doc["hash"]))  # only verified events extend the chain
    return stream, None
