"""Issue 13, findings 1, 2 (input side) and 5 (input side), and the rule that no event wedges
its stream: text, URL and date validation at the door, and a projector that records an event
it cannot apply and carries on with the stream's later events."""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from events.envelope import Actor, Envelope, EventData
from events.recommendation import ProgressReported, RecommendationIssued
from events.registry import event_type_name, seal_and_dump
from events.streams import partition_key
from infra.kafka_clients import durable_producer
from infra.settings import Settings
from services.domain.commands import COMMAND_TYPES, InvalidCommand, parse_command
from tests.cli import rectrack
from tests.e2e.helpers import bearer
from tests.sealing import partition_of, sealed

pytestmark = pytest.mark.integration

ADMIN = {"name": "Admin Test", "team": "improvement", "role": "admin"}
SHA = "ab" * 32
# One valid document per command type with every optional field filled in, so that every
# string a command can carry is exercised below.
EVERY_FIELD: dict[str, dict[str, Any]] = {
    "PublishInspection": {
        "inspection_id": "probe-insp",
        "title": "A thematic inspection",
        "inspectorate": "HMICS",
        "published_on": "2024-01-10",
        "inspection_type": "thematic",
        "url": "https://www.hmics.scot/publications/",
        "source": "public record",
    },
    "IssueRecommendation": {
        "inspection_id": "probe-insp",
        "number": 1,
        "text": "Police Scotland should do better.",
        "kind": "recommendation",
        "tracked": True,
        "source": "public record",
    },
    "AssignOwner": {
        "recommendation_id": "probe-insp/r1",
        "team": "ppcw",
        "owner_role": "lead officer",
        "note": "Handed over at the board.",
        "source": "minutes",
    },
    "SetTargetDate": {
        "recommendation_id": "probe-insp/r1",
        "target_date": "2025-06-30",
        "reason": "Agreed plan.",
        "agreed_with_inspectorate": True,
        "source": "plan",
    },
    "ReportProgress": {
        "recommendation_id": "probe-insp/r1",
        "position": "Training is late.",
        "delivery_status": "delayed",
        "delay_reason": "resourcing",
        "source": "update",
    },
    "SubmitEvidence": {
        "recommendation_id": "probe-insp/r1",
        "evidence_id": "esf-1",
        "summary": "Evidence summary form.",
        "documents": [{"name": "esf-1.pdf", "sha256": SHA}],
        "source": "ESF",
    },
    "ProposeClosure": {
        "recommendation_id": "probe-insp/r1",
        "rationale": "The evidence shows it is met.",
        "evidence_ids": ["esf-1", "esf-2"],
        "source": "board",
    },
    "RecordInspectorateDecision": {
        "recommendation_id": "probe-insp/r1",
        "decision": "kept_open",
        "rationale": "More to do.",
        "source": "letter",
    },
    "RecordCommitteeUpdate": {
        "committee": "spa-ppc",
        "meeting_date": "2024-09-18",
        "title": "Improvement update",
        "source": "agenda",
    },
    "RegisterSigningKey": {
        "public_key": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=",
        "principal": {"name": "Contributor Team", "team": "team-a", "role": "contributor"},
        "kind": "team",
        "source": "onboarding",
    },
    "RevokeSigningKey": {
        "key_id": "0123456789abcdef0123456789abcdef",
        "reason": "The key left with its laptop.",
        "source": "ticket",
    },
}
# C0 controls but newline and tab, DEL, and a C1 control: refused in every string of a command.
REFUSED = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, 0x85, 0x9B)]


def _command(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": type_,
        "command_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "effective_date": "2024-06-01",
        "actor": dict(ADMIN),
        "loaded_by": dict(ADMIN),
        "data": data,
    }


def _strings(doc: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every string in a JSON document."""
    if isinstance(doc, str):
        yield path
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield from _strings(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _strings(value, (*path, i))


def _with(doc: Any, path: tuple[str | int, ...], char: str, at: float) -> Any:
    """A copy of doc with char inserted inside (never at an end of) the string at path."""
    if not path:
        assert isinstance(doc, str)
        cut = 1 + int(at * (len(doc) - 1))
        return doc[:cut] + char + doc[cut:]
    copy = list(doc) if isinstance(doc, list) else dict(doc)
    copy[path[0]] = _with(doc[path[0]], path[1:], char, at)  # type: ignore[index]
    return copy


EVERY_STRING = [
    (type_, path) for type_, data in EVERY_FIELD.items() for path in _strings(_command(type_, data))
]


async def _post(client: httpx.AsyncClient, headers: dict[str, str], body: Any) -> httpx.Response:
    return await client.post("/commands", json=body, headers=headers)


def _fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["detail"]}


def _publish(inspection_id: str, **data: Any) -> dict[str, Any]:
    return {
        "type": "PublishInspection",
        "data": {
            "inspection_id": inspection_id,
            "title": "Probe inspection",
            "inspectorate": "HMICS",
            "published_on": date.today().isoformat(),
            **data,
        },
    }


# Finding 1: `IssueRecommendation` with "nul\u0000byte" was accepted (201).
async def test_a_nul_in_a_command_is_refused_naming_the_field(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    inspection = f"nul-{uuid.uuid4().hex[:10]}"
    headers = await bearer(pool, "admin")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        published = await _post(client, headers, _publish(inspection))
        assert published.status_code == 201, published.text
        issued = await _post(
            client,
            headers,
            {
                "type": "IssueRecommendation",
                "data": {"inspection_id": inspection, "number": 1, "text": "nul\u0000byte"},
            },
        )
    assert issued.status_code == 422, issued.text
    [error] = issued.json()["detail"]
    assert error["field"] == "data.text"
    assert "U+0000" in error["reason"]


# Finding 1, as a class: no string anywhere in any command may carry a control character.
def test_a_control_character_in_any_string_of_any_command_is_refused_naming_it() -> None:
    for type_, model in COMMAND_TYPES.items():  # a new field must join EVERY_FIELD
        assert set(model.model_fields) == set(EVERY_FIELD[type_]), type_
    assert len(EVERY_STRING) > 100
    for type_, path in EVERY_STRING:
        field = ".".join(str(p) for p in path)
        parse_command(_command(type_, EVERY_FIELD[type_]))  # valid as it stands
        for n, char in enumerate(REFUSED):
            doc = _with(_command(type_, EVERY_FIELD[type_]), path, char, n / len(REFUSED))
            with pytest.raises(InvalidCommand) as refused:
                parse_command(doc)
            assert field in {e["field"] for e in refused.value.errors}, (field, char)


# Finding 2 (input side): a `javascript:` url was stored and rendered as a link.
async def test_an_inspection_url_must_be_http_or_https(stack: Settings, pool: asyncpg.Pool) -> None:
    headers = await bearer(pool, "admin")
    hostile = [
        "javascript:fetch('/inspections').then(r=>r.text()).then(alert)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example/phish",
        "https://www.hmics.scot@evil.example/",
        "https://www.hmics.scot/\u0000",
        "https:///no-host",
    ]
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        refused = [
            await _post(client, headers, _publish(f"url-{uuid.uuid4().hex[:10]}", url=url))
            for url in hostile
        ]
        good = await _post(
            client,
            headers,
            _publish(f"url-{uuid.uuid4().hex[:10]}", url="https://www.hmics.scot/publications/"),
        )
    assert [r.status_code for r in refused] == [422] * len(hostile), [r.text for r in refused]
    assert all(_fields(r) == {"data.url"} for r in refused)
    assert good.status_code == 201, good.text
    assert good.json()["status"] == "accepted"


# Finding 5 (input side): 0001-01-01 was stored as -infinity and 9999-12-31 as infinity.
async def test_business_dates_are_bounded(stack: Settings, pool: asyncpg.Pool) -> None:
    headers = await bearer(pool, "admin")
    committee = f"probe-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        refused = {
            ("published_on", day): await _post(
                client,
                headers,
                {
                    **_publish(f"date-{uuid.uuid4().hex[:10]}", published_on=day),
                    "effective_date": day,
                },
            )
            for day in ("0001-01-01", "1899-12-31", "9999-12-31")
        }
        refused |= {
            ("meeting_date", day): await _post(
                client,
                headers,
                {
                    "type": "RecordCommitteeUpdate",
                    "data": {"committee": committee, "meeting_date": day, "title": "Update"},
                },
            )
            for day in ("0001-01-01", "9999-12-31")
        }
        refused[("effective_date", "0001-01-01")] = await _post(
            client,
            headers,
            {
                "type": "RecordCommitteeUpdate",
                "effective_date": "0001-01-01",
                "data": {"committee": committee, "meeting_date": "2024-09-18", "title": "Update"},
            },
        )
        # A sane date still passes (the bounds' exact edges are unit-tested: an inspection of
        # 1900 here would show in every later test's papers).
        today = await _post(client, headers, _publish(f"date-{uuid.uuid4().hex[:10]}"))
    for (field, day), response in refused.items():
        assert response.status_code == 422, (field, day, response.text)
        [error] = response.json()["detail"]
        assert error["field"] in {f"data.{field}", field}, error
        assert day in error["reason"] and "1900-01-01" in error["reason"]
    assert today.status_code == 201, today.text


def _sealed(
    stream: str, version: int, data: EventData, prev_hash: str | None, partitions: int
) -> tuple[bytes, int, bytes]:
    """A genuine event of a stream, linked to its head and sealed for the partition its key
    gives, as a decider of the past (with a key still trusted) wrote it."""
    now = datetime.now(UTC)
    envelope = Envelope(
        event_id=uuid.uuid4(),
        type=event_type_name(data),
        stream_id=stream,
        stream_version=version,
        effective_date=now.date(),
        recorded_at=now,
        command_id=uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        actor=Actor(name="A defect of the past", team="hmics", role="inspector"),
        data=data,
    )
    key = partition_key(stream)
    partition = partition_of(key, partitions)
    return key, partition, sealed(seal_and_dump(envelope, prev_hash)[1], partition=partition)


async def _until(pool: asyncpg.Pool, sql: str, *args: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        async with pool.acquire() as conn:
            value = await conn.fetchval(sql, *args)
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


# The requirement: an event already in the log that cannot be projected never wedges its
# stream (finding 1 froze a recommendation for ever: "chain broken: stream_version 2, expected 1").
async def test_an_unprojectable_event_in_the_log_does_not_wedge_its_stream(
    stack: Settings, pool: asyncpg.Pool, run_env: dict[str, str]
) -> None:
    inspection = f"wedge-{uuid.uuid4().hex[:10]}"
    r1, r2, r3 = (f"{inspection}/r{n}" for n in (1, 2, 3))
    headers = await bearer(pool, "admin")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        assert (await _post(client, headers, _publish(inspection))).status_code == 201
        for n in (2, 3):
            issued = await _post(
                client,
                headers,
                {
                    "type": "IssueRecommendation",
                    "data": {"inspection_id": inspection, "number": n, "text": f"Rec {n}"},
                },
            )
            assert issued.status_code == 201, issued.text
        r2_head = await _until(pool, "SELECT hash FROM stream_heads WHERE stream_id = $1", r2)
        assert r2_head
        # What an earlier defect let through, appended as the decider would have: r1 issued
        # with a NUL in its text (PostgreSQL refuses it), and a NUL in r2's second event.
        bad = [
            _sealed(
                r1,
                1,
                RecommendationIssued(
                    recommendation_id=r1, inspection_id=inspection, number=1, text="nul\x00byte"
                ),
                None,
                stack.partitions,
            ),
            _sealed(
                r2,
                2,
                ProgressReported(
                    recommendation_id=r2, position="nul\x00byte", delivery_status="on_track"
                ),
                r2_head,
                stack.partitions,
            ),
        ]
        producer = durable_producer(stack)
        await producer.start()
        try:
            appended = [
                await producer.send_and_wait(
                    stack.topics.events, value, key=key, partition=partition
                )
                for key, partition, value in bad
            ]
        finally:
            await producer.stop()
        # The stream's later events, through the real decider.
        later = [
            (
                2,
                {
                    "type": "AssignOwner",
                    "data": {"recommendation_id": r1, "team": "ppcw", "owner_role": "lead"},
                },
            ),
            (
                3,
                {
                    "type": "ReportProgress",
                    "data": {
                        "recommendation_id": r2,
                        "position": "Back on track",
                        "delivery_status": "on_track",
                    },
                },
            ),
        ]
        for version, body in later:
            response = await _post(client, headers, body)
            assert response.status_code == 201, response.text
            assert response.json()["stream_version"] == version

        # Later events project: r1's owner assignment and r2's third event are in the read model.
        assert await _until(
            pool,
            "SELECT count(*) = 2 FROM event_log "
            "WHERE (stream_id, stream_version) IN (($1, 2), ($2, 3))",
            r1,
            r2,
        ), "the events after the unprojectable ones were never projected"
        async with pool.acquire() as conn:
            errors = await conn.fetch(
                'SELECT partition, "offset", stream_id, stream_version, in_chain, reason '
                "FROM projection_errors WHERE stream_id = ANY($1::text[]) ORDER BY stream_id",
                [r1, r2],
            )
        assert [(e["stream_id"], e["stream_version"], e["in_chain"]) for e in errors] == [
            (r1, 1, True),
            (r2, 2, True),
        ]
        assert [(e["partition"], e["offset"]) for e in errors] == [
            (m.partition, m.offset) for m in appended
        ]

        # The report flags the line and counts the events on the inspection.
        report = (
            await client.get(
                "/report",
                params={"as_of": date.today().isoformat(), "inspection": inspection},
                headers=headers,
            )
        ).json()
        [line] = report["inspections"]
        by_id = {rec["recommendation_id"]: rec for rec in line["recommendations"]}
        assert set(by_id) == {r2, r3}  # r1's issue is the event that could not be projected
        assert by_id[r2]["incomplete"] is True
        assert by_id[r2]["latest_position"] == "Back on track"
        assert by_id[r3]["incomplete"] is False
        assert line["unprojected_events"] == 2
        assert report["unprojected_events"] == 2

        # The history still answers with what was projected.
        r1_history = await client.get(f"/recommendations/{r1}/history", headers=headers)
        r2_history = await client.get(f"/recommendations/{r2}/history", headers=headers)
    assert r1_history.status_code == 200, r1_history.text
    assert [e["stream_version"] for e in r1_history.json()] == [2]
    assert [e["stream_version"] for e in r2_history.json()] == [1, 3]

    # verify names each event, exits 1, and the read model rebuilt from the log (the replay's
    # path, in batches unlike the live projector's) equals the live one.
    done = rectrack(run_env, "verify", "--json", check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    result = json.loads(done.stdout)
    named = {
        (u["stream_id"], u["stream_version"]): u
        for u in result["unprojected"]
        if u["stream_id"] in (r1, r2)
    }
    assert set(named) == {(r1, 1), (r2, 2)}
    for m, (stream, version) in zip(appended, [(r1, 1), (r2, 2)], strict=True):
        u = named[(stream, version)]
        assert (u["topic"], u["partition"], u["offset"]) == (
            stack.topics.events,
            m.partition,
            m.offset,
        )
        assert u["in_chain"] is True and u["reason"]
    assert not [b for b in result["breaks"] if b["stream_id"] in (r1, r2)]
    assert result["read_models_differing"] == []
    text = rectrack(run_env, "verify", "--no-read-models", check=False)
    assert text.returncode == 1
    assert f"offset {appended[0].offset} stream {r1} version 1" in text.stdout


def test_a_token_holder_named_with_control_characters_is_refused(
    settings: Settings, run_env: dict[str, str]
) -> None:
    """A token's holder is the actor of every command it sends: the same text rules apply."""
    for option, value in (("--name", "Eve\x1b[31m red"), ("--team", "team\ta")):
        who = {"--name": "Eve", "--team": "team-a", option: value}
        args = [a for pair in who.items() for a in pair]
        result = rectrack(run_env, "tokens", "create", *args, "--role", "admin", check=False)
        assert result.returncode == 1, result.stdout
        assert option in result.stderr and "control character" in result.stderr, result.stderr
        assert "rt_" not in result.stdout
