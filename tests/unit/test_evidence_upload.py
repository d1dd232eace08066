"""An evidence upload, from a read form to the command: nothing is stored or sent while anything
is wrong, and the command names each stored document's name, size, media type and hash."""

import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID

import pytest

from events.envelope import Actor
from events.outcome import Outcome
from infra.documents.kinds import size_refusal
from infra.documents.memory import MemoryDocumentStore
from infra.documents.store import sha256_of
from services.domain.commands import Command, SubmitEvidence
from services.web.evidence import (
    MAX_EVIDENCE_DOCUMENTS,
    EvidenceForbidden,
    EvidenceRefused,
    check_uploaded,
    evidence_body_limit,
    submit_evidence,
)
from services.web.uploads import ReceivedFile, ReceivedForm
from tests.documents import CSV, EXE, NAMES, PDF, PNG, sample

REC = "insp-1/r1"
CONTRIBUTOR = Actor(name="Lead", team="team-a", role="contributor")
FIELDS = {"evidence_id": "esf-1", "summary": "Training delivered"}
LIMIT = 10_000


class FakeGateway:
    """Records what is submitted and accepts it."""

    def __init__(self) -> None:
        self.sent: list[Command] = []

    async def submit(
        self,
        commands: Sequence[Command],
        *,
        timeout: float = 30.0,
        ack_timeout: float | None = None,
    ) -> Mapping[UUID, Outcome]:
        self.sent += commands
        return {
            c.command_id: Outcome(
                command_id=c.command_id,
                status="accepted",
                command_type=c.type,
                stream_id=c.stream_id,
                recorded_at=datetime.now(UTC),
            )
            for c in commands
        }


def received(*files: tuple[str, bytes, str | None], field: str = "documents") -> ReceivedForm:
    form = ReceivedForm()
    for index, (filename, content, content_type) in enumerate(files):
        spool = tempfile.SpooledTemporaryFile()  # noqa: SIM115 - the form closes it
        spool.write(content)
        form.files.append(
            ReceivedFile(field, index, filename, content_type, size=len(content), spool=spool)
        )
    return form


async def test_documents_are_stored_and_the_command_names_their_size_type_and_hash() -> None:
    store, gateway = MemoryDocumentStore(), FakeGateway()
    pdf, png = sample(PDF, "u1"), sample(PNG, "u1")
    async with received(("esf.pdf", pdf, PDF), ("chart.png", png, None)) as form:
        checked = await check_uploaded(form, limit=LIMIT)
        assert [(d.name, d.size, d.sha256) for d in checked] == [
            ("esf.pdf", len(pdf), sha256_of(pdf)),
            ("chart.png", len(png), sha256_of(png)),
        ]
        result = await submit_evidence(
            store=store,
            gateway=gateway,
            actor=CONTRIBUTOR,
            recommendation_id=REC,
            fields=FIELDS,
            documents=checked,
            wait=1,
        )
    (command,) = gateway.sent
    assert command.actor.name == "Lead" and command.stream_id == REC
    assert isinstance(command.data, SubmitEvidence)
    assert [d.model_dump() for d in command.data.documents] == [
        {"name": "esf.pdf", "sha256": sha256_of(pdf), "size": len(pdf), "media_type": PDF},
        {"name": "chart.png", "sha256": sha256_of(png), "size": len(png), "media_type": PNG},
    ]
    assert set(store.rows) == {sha256_of(pdf), sha256_of(png)}
    assert result.outcome is not None and result.outcome.status == "accepted"
    assert result.documents_json()[0]["href"] == f"/documents/{sha256_of(pdf)}"


async def test_a_renamed_program_refuses_the_whole_upload_naming_each_bad_file() -> None:
    async with received(
        ("esf.pdf", sample(PDF), PDF), ("setup.pdf", EXE, PDF), ("x.csv", b"\x00", CSV)
    ) as form:
        with pytest.raises(EvidenceRefused) as caught:
            await check_uploaded(form, limit=LIMIT)
    assert caught.value.status == 415
    assert [(e["field"], e["file"]) for e in caught.value.errors] == [
        ("documents[1]", "setup.pdf"),
        ("documents[2]", "x.csv"),
    ]


async def test_a_file_refused_for_its_size_makes_the_answer_413() -> None:
    form = received(("esf.pdf", sample(PDF), PDF))
    form.refused.append(size_refusal("documents[1]", "big.pdf", LIMIT))
    with pytest.raises(EvidenceRefused) as caught:
        await check_uploaded(form, limit=LIMIT)
    assert caught.value.status == 413
    assert caught.value.errors[0]["file"] == "big.pdf"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (ReceivedForm(), "documents"),  # no file at all
        (received(("esf.pdf", sample(PDF), PDF), field="attachment"), "attachment"),
    ],
)
async def test_files_only_in_the_documents_field_and_at_least_one(
    form: ReceivedForm, field: str
) -> None:
    with pytest.raises(EvidenceRefused) as caught:
        await check_uploaded(form, limit=LIMIT)
    assert caught.value.status == 422 and caught.value.errors[0]["field"] == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"summary": "s"}, "evidence_id"),
        ({**FIELDS, "evidence_id": "bad\nid"}, "evidence_id"),
        ({**FIELDS, "actor": "someone else"}, "actor"),
        ({**FIELDS, "expected_version": "two"}, "expected_version"),
        ({**FIELDS, "effective_date": "0001-01-01"}, "effective_date"),
    ],
)
async def test_invalid_fields_store_nothing_and_send_nothing(
    fields: dict[str, str], field: str
) -> None:
    store, gateway = MemoryDocumentStore(), FakeGateway()
    async with received(("esf.pdf", sample(PDF), PDF)) as form:
        checked = await check_uploaded(form, limit=LIMIT)
        with pytest.raises(EvidenceRefused) as caught:
            await submit_evidence(
                store=store,
                gateway=gateway,
                actor=CONTRIBUTOR,
                recommendation_id=REC,
                fields=fields,
                documents=checked,
                wait=1,
            )
    assert caught.value.status == 422
    assert [e["field"] for e in caught.value.errors] == [field]
    assert store.rows == {} and gateway.sent == []


async def test_optional_fields_left_empty_count_as_not_given() -> None:
    store, gateway = MemoryDocumentStore(), FakeGateway()
    empty = {**FIELDS, "source": "", "command_id": "", "effective_date": "", "expected_version": ""}
    async with received(("esf.pdf", sample(PDF, "empty"), PDF)) as form:
        checked = await check_uploaded(form, limit=LIMIT)
        await submit_evidence(
            store=store,
            gateway=gateway,
            actor=CONTRIBUTOR,
            recommendation_id=REC,
            fields=empty,
            documents=checked,
            wait=1,
        )
    (command,) = gateway.sent
    assert command.data.source is None and command.expected_version is None


@pytest.mark.parametrize("role", ["viewer", "inspector"])
async def test_a_role_that_never_submits_evidence_stores_nothing(role: str) -> None:
    store, gateway = MemoryDocumentStore(), FakeGateway()
    actor = Actor.model_validate({"name": "n", "team": "hmics", "role": role})
    async with received((NAMES[PDF], sample(PDF), PDF)) as form:
        checked = await check_uploaded(form, limit=LIMIT)
        with pytest.raises(EvidenceForbidden, match="SubmitEvidence needs role admin or contrib"):
            await submit_evidence(
                store=store,
                gateway=gateway,
                actor=actor,
                recommendation_id=REC,
                fields=FIELDS,
                documents=checked,
                wait=1,
            )
    assert store.rows == {} and gateway.sent == []


def test_the_upload_body_limit_follows_the_document_limit() -> None:
    assert evidence_body_limit(LIMIT) == MAX_EVIDENCE_DOCUMENTS * LIMIT + 1024 * 1024
    assert evidence_body_limit(2 * LIMIT) - evidence_body_limit(LIMIT) == 10 * LIMIT
