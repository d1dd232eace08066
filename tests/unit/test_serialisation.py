"""Bytes in and out: events round-trip, bad input names its field."""

from datetime import UTC, date, datetime
from hashlib import sha256
from uuid import uuid4

import orjson
import pytest

from events.envelope import Actor, Envelope
from events.integrity import chain_break, seal
from events.recommendation import EvidenceSubmitted, ProgressReported
from events.registry import (
    UnreadableEvent,
    current_version,
    dump_event,
    parse_event,
    seal_and_dump,
)
from services.domain.commands import (
    InvalidCommand,
    dump_command,
    parse_command,
    parse_command_bytes,
)
from tests.builders import INSPECTOR, publish


def envelope() -> Envelope:
    return Envelope(
        event_id=uuid4(),
        type="EvidenceSubmitted",
        schema_version=current_version("EvidenceSubmitted"),
        stream_id="x/r1",
        stream_version=3,
        effective_date=date(2024, 4, 1),
        recorded_at=datetime(2024, 4, 2, 9, 30, tzinfo=UTC),
        command_id=uuid4(),
        correlation_id=uuid4(),
        actor=Actor(name="A", team="t", role="contributor"),
        data=EvidenceSubmitted(
            recommendation_id="x/r1",
            evidence_id="esf-1",
            summary="ESF",
            documents=(
                {
                    "name": "esf.pdf",
                    "sha256": "a" * 64,
                    "size": 1234,
                    "media_type": "application/pdf",
                },
            ),
        ),
    )


def test_event_round_trips_with_typed_data() -> None:
    original = envelope()
    parsed = parse_event(dump_event(original))
    assert parsed == original
    assert isinstance(parsed.data, EvidenceSubmitted)
    assert parsed.data.documents[0].sha256 == "a" * 64


def test_dump_is_canonical() -> None:
    raw = dump_event(envelope())
    assert raw == orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("prev_hash", [None, "b" * 64])
def test_seal_and_dump_writes_the_bytes_of_seal_then_dump(prev_hash: str | None) -> None:
    unsealed = envelope()
    sealed, raw = seal_and_dump(unsealed, prev_hash)
    assert sealed == seal(unsealed, prev_hash)
    assert raw == dump_event(seal(unsealed, prev_hash))
    assert chain_break(orjson.loads(raw), prev_hash) is None


def test_hash_is_sha256_of_the_sorted_document_without_its_hash() -> None:
    # The projector and `rectrack verify` recompute exactly this; it must never drift.
    sealed, raw = seal_and_dump(envelope(), "c" * 64)
    doc = orjson.loads(raw)
    content = {k: v for k, v in doc.items() if k != "hash"}
    expected = sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert sealed.hash == doc["hash"] == expected
    assert doc["prev_hash"] == "c" * 64


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        b'{"type": "Nope", "data": {}}',
        orjson.dumps({"type": "ProgressReported", "data": {"recommendation_id": "x"}}),
    ],
)
def test_unreadable_events_raise(raw: bytes) -> None:
    with pytest.raises(UnreadableEvent):
        parse_event(raw)


def test_command_round_trips() -> None:
    cmd = publish("hate-crime-2021")
    assert parse_command_bytes(dump_command(cmd)) == cmd


def _errors(doc: object) -> dict[str, str]:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(doc)
    return {e["field"]: e["reason"] for e in caught.value.errors}


def test_unknown_type_names_the_type_field() -> None:
    assert "type" in _errors({"type": "CloseEverything", "data": {}, "actor": INSPECTOR})


def test_bad_data_names_the_data_field() -> None:
    errors = _errors(
        {
            "type": "IssueRecommendation",
            "actor": INSPECTOR,
            "data": {"inspection_id": "Bad Slug!", "number": 0, "text": "x"},
        }
    )
    assert set(errors) == {"data.inspection_id", "data.number"}


def test_unknown_fields_are_refused() -> None:
    errors = _errors(
        {
            "type": "PublishInspection",
            "actor": INSPECTOR,
            "data": {
                "inspection_id": "a",
                "title": "t",
                "inspectorate": "HMICS",
                "published_on": "2024-01-01",
                "colour": "red",
            },
        }
    )
    assert "data.colour" in errors


def test_delayed_progress_needs_a_reason() -> None:
    errors = _errors(
        {
            "type": "ReportProgress",
            "actor": INSPECTOR,
            "data": {"recommendation_id": "a/r1", "position": "p", "delivery_status": "delayed"},
        }
    )
    assert any("delay_reason" in reason for reason in errors.values())


def test_missing_actor_is_named() -> None:
    errors = _errors(
        {
            "type": "PublishInspection",
            "data": {
                "inspection_id": "a",
                "title": "t",
                "inspectorate": "HMICS",
                "published_on": "2024-01-01",
            },
        }
    )
    assert "actor" in errors


def test_oversized_and_non_json_commands() -> None:
    with pytest.raises(InvalidCommand, match="larger than"):
        parse_command_bytes(b" " * 300_000)
    with pytest.raises(InvalidCommand, match="not JSON"):
        parse_command_bytes(b"\x00\x01")


def test_progress_event_model_is_strict() -> None:
    with pytest.raises(ValueError, match="delivery_status"):
        ProgressReported(recommendation_id="a/r1", position="p", delivery_status="late")


def test_kafka_cluster_ids_never_look_like_options() -> None:
    from infra.kafka_broker import cluster_id

    ids = [cluster_id() for _ in range(2000)]
    assert all(not i.startswith("-") and len(i) == 22 for i in ids)
