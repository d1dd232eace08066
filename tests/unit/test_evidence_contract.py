"""The evidence contract, extended compatibly: version 1 events (documents by name and hash)
still parse, project and hash as written; version 2 documents carry size and media type."""

from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest

from events.contract import event_schema
from events.envelope import Actor, Envelope
from events.integrity import chain_break, seal
from events.recommendation import Document, EvidenceSubmitted, evidence_submitted_v1_to_v2
from events.registry import UPCASTERS, current_version, dump_event, parse_event
from projections.recommendations.project import event_log_row
from services.domain.commands import InvalidCommand, dump_command, parse_command
from services.domain.idempotency import command_digest
from tests.builders import contributor

SHA = "ab" * 32
V1_DATA: dict[str, Any] = {
    "recommendation_id": "x/r1",
    "evidence_id": "esf-1",
    "summary": "ESF",
    "source": None,
    "documents": [{"name": "esf.pdf", "sha256": SHA}],
}


def v1_event_bytes() -> bytes:
    """An EvidenceSubmitted event as rectrack wrote them before documents were stored."""
    envelope = Envelope(
        event_id=uuid4(),
        type="EvidenceSubmitted",
        schema_version=1,
        stream_id="x/r1",
        stream_version=4,
        effective_date=date(2023, 5, 1),
        recorded_at=datetime(2023, 5, 2, tzinfo=UTC),
        command_id=uuid4(),
        correlation_id=uuid4(),
        actor=Actor(name="A", team="team-a", role="contributor"),
        data=EvidenceSubmitted.model_validate(V1_DATA),
    )
    return dump_event(seal(envelope, "c" * 64))


def test_a_version_1_event_parses_as_version_2_with_size_and_type_not_recorded() -> None:
    raw = v1_event_bytes()
    assert orjson.loads(raw)["data"]["documents"] == V1_DATA["documents"]  # as written then
    parsed = parse_event(raw)
    assert parsed.schema_version == current_version("EvidenceSubmitted") == 2
    assert isinstance(parsed.data, EvidenceSubmitted)
    assert parsed.data.documents == (
        Document(name="esf.pdf", sha256=SHA, size=None, media_type=None),
    )
    # Its hash still verifies on the raw bytes, and its read-model row is what it was.
    assert chain_break(orjson.loads(raw), "c" * 64) is None
    data_column = event_log_row(parsed)[-1]
    assert isinstance(data_column, str) and orjson.loads(data_column) == V1_DATA


def test_the_upcaster_is_registered_and_says_not_recorded() -> None:
    assert UPCASTERS[("EvidenceSubmitted", 1)] is evidence_submitted_v1_to_v2
    upcast = evidence_submitted_v1_to_v2(V1_DATA)
    assert upcast["documents"] == [
        {"name": "esf.pdf", "sha256": SHA, "size": None, "media_type": None}
    ]
    assert evidence_submitted_v1_to_v2({"summary": "no documents"}) == {"summary": "no documents"}
    assert V1_DATA["documents"] == [{"name": "esf.pdf", "sha256": SHA}]  # not changed in place


def test_a_version_2_document_round_trips_with_size_and_type() -> None:
    document = Document(name="esf.pdf", sha256=SHA, size=2048, media_type="application/pdf")
    dumped = document.model_dump(mode="json")
    assert dumped == {
        "name": "esf.pdf",
        "sha256": SHA,
        "size": 2048,
        "media_type": "application/pdf",
    }
    assert Document.model_validate(dumped) == document
    # Not recorded is left out of the JSON, so such events hash as they did.
    assert Document(name="esf.pdf", sha256=SHA).model_dump(mode="json") == {
        "name": "esf.pdf",
        "sha256": SHA,
    }


def test_the_published_schema_describes_version_2_documents() -> None:
    schema = event_schema("EvidenceSubmitted")
    assert schema["properties"]["schema_version"] == {"const": 2}
    properties = schema["$defs"]["Document"]["properties"]
    assert {"name", "sha256", "size", "media_type"} <= set(properties)
    assert schema["$defs"]["Document"]["required"] == ["name", "sha256"]


def evidence(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "SubmitEvidence",
        "actor": contributor(),
        "data": {
            "recommendation_id": "x/r1",
            "evidence_id": "e",
            "summary": "s",
            "documents": documents,
        },
    }


def test_commands_may_still_cite_a_document_by_name_and_hash_only() -> None:
    old = parse_command(evidence([{"name": "esf.pdf", "sha256": SHA}]))
    # Its wire form and its digest are what they were before documents had sizes.
    assert orjson.loads(dump_command(old))["data"]["documents"] == [
        {"name": "esf.pdf", "sha256": SHA}
    ]
    full = parse_command(
        evidence([{"name": "esf.pdf", "sha256": SHA, "size": 10, "media_type": "application/pdf"}])
    )
    assert command_digest(old) != command_digest(full)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (
            {"name": "a.exe", "sha256": SHA, "size": 10, "media_type": "application/x-msdownload"},
            "media_type",
        ),
        ({"name": "a.pdf", "sha256": SHA, "size": 0, "media_type": "application/pdf"}, "size"),
        ({"name": "a.pdf", "sha256": SHA, "size": 2**53, "media_type": "application/pdf"}, "size"),
        ({"name": "a.pdf", "sha256": "AB" * 32}, "sha256"),
    ],
)
def test_a_document_a_command_describes_wrongly_is_refused_naming_the_field(
    document: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(evidence([document]))
    assert [e["field"] for e in caught.value.errors] == [f"data.documents.0.{field}"]
