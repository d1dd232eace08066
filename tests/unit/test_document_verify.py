"""`rectrack verify`'s document check: every cited document against the store's bytes, each
missing or altered one named by recommendation, evidence, event, place in the log, file, hash."""

import dataclasses

import orjson

from events.recommendation import Document, EvidenceSubmitted, ProgressReported
from infra.documents.memory import MemoryDocumentStore
from infra.documents.store import StoredDocument, sha256_of
from projections.documents import check_documents, cited_documents
from tests.documents import PDF, PNG, TXT, sample
from tests.histories import History


def history(*documents: Document) -> History:
    h = History()
    h.add(
        "v/r1",
        "2024-03-01",
        ProgressReported(recommendation_id="v/r1", position="p", delivery_status="on_track"),
    )
    h.add(
        "v/r1",
        "2024-04-01",
        EvidenceSubmitted(
            recommendation_id="v/r1", evidence_id="esf-1", summary="s", documents=documents
        ),
    )
    return h


def held(content: bytes, name: str, media_type: str) -> Document:
    return Document(name=name, sha256=sha256_of(content), size=len(content), media_type=media_type)


async def test_intact_missing_altered_and_cited_by_hash_only() -> None:
    intact, lost, forged = sample(PDF, "a"), sample(PNG, "b"), sample(TXT, "c")
    legacy = Document(name="old.pdf", sha256="0" * 64)  # recorded before documents were stored
    h = history(
        held(intact, "esf.pdf", PDF),
        held(lost, "chart.png", PNG),
        held(forged, "n.txt", TXT),
        legacy,
    )
    store = MemoryDocumentStore()
    for content, media_type in ((intact, PDF), (forged, TXT)):
        await store.put(content, media_type)
    info = store.rows[sha256_of(forged)].info
    store.rows[info.sha256] = StoredDocument(info, forged.replace(b"Evidence", b"Evidense"))

    cited = cited_documents("t.events", h.messages())
    report = await check_documents(store, cited)

    assert (report.cited, report.intact, report.clean) == (4, 1, False)
    (missing,) = report.missing
    assert (missing.document.name, missing.document.sha256) == ("chart.png", sha256_of(lost))
    assert missing.reason == "no document is stored under this hash"
    (altered,) = report.altered
    assert altered.document.name == "n.txt"
    assert altered.reason.startswith("the stored bytes hash to ")
    event = h.envelopes[1]
    assert (altered.document.event_id, altered.document.recommendation_id) == (
        str(event.event_id),
        "v/r1",
    )
    assert (altered.document.evidence_id, altered.document.topic) == ("esf-1", "t.events")
    assert (altered.document.partition, altered.document.offset) == (0, 1)
    assert [d.name for d in report.not_held] == ["old.pdf"]


async def test_a_document_stored_at_another_size_than_its_event_says_is_altered() -> None:
    content = sample(PDF, "size")
    lying = Document(name="esf.pdf", sha256=sha256_of(content), size=1, media_type=PDF)
    store = MemoryDocumentStore()
    await store.put(content, PDF)
    report = await check_documents(store, cited_documents("t", history(lying).messages()))
    assert [p.reason for p in report.altered] == [
        f"the stored document holds {len(content)} bytes, the event says 1"
    ]


async def test_all_stored_as_cited_is_clean_and_unreadable_events_are_left_to_the_walk() -> None:
    content = sample(PDF, "clean")
    h = history(held(content, "esf.pdf", PDF))
    store = MemoryDocumentStore()
    await store.put(content, PDF)
    messages = [*h.messages()]
    messages.append(dataclasses.replace(messages[-1], offset=2, value=b"not json"))
    broken = orjson.loads(messages[1].value)
    broken["data"]["documents"] = "nonsense"
    messages.append(dataclasses.replace(messages[-1], offset=3, value=orjson.dumps(broken)))
    report = await check_documents(store, cited_documents("t", messages))
    assert (report.cited, report.intact, report.clean) == (1, 1, True)
    assert cited_documents("t", messages, from_offset=2) == []
