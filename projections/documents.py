"""`rectrack verify`'s check of the evidence documents: every document an event cites, against
the bytes the document store holds under its hash.

A document whose event records its size was stored by rectrack at upload, so it must be there
and hash to the event's SHA-256 with the event's size: one that is not there is **missing**,
one whose bytes hash otherwise (or whose size differs) is **altered**. A document cited by hash
only (no size: recorded before rectrack stored documents, or cited by a team system) is checked
the same way when it is there, and otherwise counted as **not held**, which is no problem.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import orjson

from events.recommendation import EvidenceSubmitted
from events.registry import UnreadableEvent, parse_event_doc
from events.topics import Message
from infra.documents.store import DocumentStore, sha256_of


@dataclass(frozen=True)
class CitedDocument:
    """A document as one event cites it, and where that event is in the log."""

    topic: str
    partition: int
    offset: int
    event_id: str
    recommendation_id: str
    evidence_id: str
    name: str
    sha256: str
    size: int | None
    media_type: str | None


@dataclass(frozen=True)
class DocumentProblem:
    """A cited document the store does not hold as the event says."""

    problem: Literal["missing", "altered"]
    reason: str
    document: CitedDocument


@dataclass
class DocumentReport:
    """What checking every cited document found."""

    cited: int = 0
    intact: int = 0
    missing: list[DocumentProblem] = field(default_factory=list)
    altered: list[DocumentProblem] = field(default_factory=list)
    not_held: list[CitedDocument] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Every document rectrack stored is there, as its event says."""
        return not (self.missing or self.altered)


def cited_documents(
    topic: str, messages: Iterable[Message], *, from_offset: int = 0
) -> list[CitedDocument]:
    """Every document cited by a readable EvidenceSubmitted event at or after `from_offset`, in
    log order; pure. Unreadable events are the chain walk's to name (events/chain.py)."""
    found: list[CitedDocument] = []
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        if m.offset < from_offset:
            continue
        try:
            envelope = parse_event_doc(orjson.loads(m.value))
        except (ValueError, UnreadableEvent):  # orjson.JSONDecodeError is a ValueError
            continue
        data = envelope.data
        if not isinstance(data, EvidenceSubmitted):
            continue
        found += [
            CitedDocument(
                topic=topic,
                partition=m.partition,
                offset=m.offset,
                event_id=str(envelope.event_id),
                recommendation_id=data.recommendation_id,
                evidence_id=data.evidence_id,
                name=d.name,
                sha256=d.sha256,
                size=d.size,
                media_type=d.media_type,
            )
            for d in data.documents
        ]
    return found


async def check_documents(store: DocumentStore, cited: Iterable[CitedDocument]) -> DocumentReport:
    """Read each cited document from the store once and compare its bytes with every event
    that cites it."""
    report = DocumentReport()
    # sha256 -> (the SHA-256 of the stored bytes, their size), or None when nothing is stored.
    read: dict[str, tuple[str, int] | None] = {}
    for doc in cited:
        report.cited += 1
        if doc.sha256 not in read:
            stored = await store.get(doc.sha256)
            read[doc.sha256] = (
                None if stored is None else (sha256_of(stored.content), len(stored.content))
            )
        held = read[doc.sha256]
        if held is None:
            if doc.size is None:
                report.not_held.append(doc)
            else:
                reason = "no document is stored under this hash"
                report.missing.append(DocumentProblem("missing", reason, doc))
            continue
        digest, size = held
        if digest != doc.sha256:
            reason = f"the stored bytes hash to {digest}"
            report.altered.append(DocumentProblem("altered", reason, doc))
        elif doc.size is not None and size != doc.size:
            reason = f"the stored document holds {size} bytes, the event says {doc.size}"
            report.altered.append(DocumentProblem("altered", reason, doc))
        else:
            report.intact += 1
    return report
