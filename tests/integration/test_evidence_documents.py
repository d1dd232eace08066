"""Evidence documents on the real stack (rectrack run, Kafka, PostgreSQL): uploaded through the
API, named in the event, downloaded by role with safe headers, refused when too large or not
what they say (changing nothing), checked by `rectrack verify`, linked by the handover pack."""

import asyncio
import hashlib
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from infra.kafka_clients import read_topic
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from tests.builders import ADMIN, issue, publish, rec_command
from tests.cli import rectrack
from tests.documents import CSV, EXE, PDF, sample
from tests.e2e.helpers import bearer, signed_in_cookies, token

pytestmark = pytest.mark.integration

TEAM = "team-docs"


async def owned_recommendation(gateway: CommandGateway) -> str:
    """A fresh recommendation owned by TEAM."""
    insp = publish()
    rec = f"{insp.stream_id}/r1"
    assign = rec_command("AssignOwner", rec, ADMIN, team=TEAM, owner_role="lead")
    outcomes = await gateway.submit([insp, issue(insp.stream_id, 1), assign], timeout=60)
    assert [o.status for o in outcomes.values()] == ["accepted"] * 3, outcomes
    return rec


async def upload(
    api: httpx.AsyncClient,
    rec: str,
    files: list[tuple[str, bytes, str]],
    headers: dict[str, str],
    evidence_id: str = "esf-1",
) -> httpx.Response:
    return await api.post(
        f"/recommendations/{rec}/evidence",
        data={"evidence_id": evidence_id, "summary": "Training delivered to 90% of officers"},
        files=[("documents", f) for f in files],
        headers=headers,
    )


async def events_of(settings: Settings, stream_id: str) -> list[dict[str, Any]]:
    """The raw events of a stream in the log."""
    found = [orjson.loads(r.value) for r in await read_topic(settings, settings.topics.events)]
    return [e for e in found if e.get("stream_id") == stream_id]


async def until_projected(
    api: httpx.AsyncClient, rec: str, count: int, headers: dict[str, str]
) -> list[dict[str, Any]]:
    """The recommendation's history once the read model holds `count` events."""
    for _ in range(100):
        response = await api.get(f"/recommendations/{rec}/history", headers=headers)
        if response.status_code == 200 and len(response.json()) >= count:
            history: list[dict[str, Any]] = response.json()
            return history
        await asyncio.sleep(0.2)
    raise AssertionError(f"{rec} never had {count} events in the read model")


async def test_evidence_uploaded_over_http_names_its_documents_and_downloads_by_role(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    rec = await owned_recommendation(gateway)
    pdf, csv = sample(PDF, rec), sample(CSV, rec)
    owner = await bearer(pool, "contributor", TEAM)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as api:
        response = await upload(
            api, rec, [("Évaluation 2024.pdf", pdf, PDF), ("actions.csv", csv, "text/csv")], owner
        )
        assert response.status_code == 201, response.text
        body = response.json()
        expected = [
            {
                "name": "Évaluation 2024.pdf",
                "sha256": hashlib.sha256(pdf).hexdigest(),
                "size": len(pdf),
                "media_type": PDF,
            },
            {
                "name": "actions.csv",
                "sha256": hashlib.sha256(csv).hexdigest(),
                "size": len(csv),
                "media_type": CSV,
            },
        ]
        assert body["status"] == "accepted" and body["stream_id"] == rec
        assert [{k: d[k] for k in expected[0]} for d in body["documents"]] == expected
        assert body["documents"][0]["href"] == f"/documents/{expected[0]['sha256']}"

        # The event in the log carries name, size, media type and hash of each document, and
        # the actor is the token's.
        (event,) = [e for e in await events_of(stack, rec) if e["type"] == "EvidenceSubmitted"]
        assert event["schema_version"] == 2
        assert event["data"]["documents"] == expected
        assert event["actor"] == {"name": "contributor user", "team": TEAM, "role": "contributor"}
        history = await until_projected(api, rec, 3, owner)
        assert history[-1]["documents"] == expected

        pdf_url = f"/documents/{expected[0]['sha256']}"
        for reader in (await bearer(pool, "inspector", "hmics"), owner):
            got = await api.get(pdf_url, headers=reader)
            assert got.status_code == 200, got.text
            assert got.content == pdf
            assert got.headers["content-type"] == PDF
            assert got.headers["content-disposition"] == (
                'attachment; filename="_valuation 2024.pdf"; '
                "filename*=UTF-8''%C3%89valuation%202024.pdf"
            )
            assert got.headers["x-content-type-options"] == "nosniff"
        as_csv = await api.get(f"/documents/{expected[1]['sha256']}", headers=owner)
        assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
        assert as_csv.content == csv

        outsider = await api.get(pdf_url, headers=await bearer(pool, "contributor", "team-other"))
        assert outsider.status_code == 403
        assert "owning team (team-docs)" in outsider.json()["detail"]
        viewer = await api.get(pdf_url, headers=await bearer(pool, "viewer", "secretariat"))
        assert viewer.status_code == 403
        anonymous = await api.get(pdf_url)
        assert anonymous.status_code == 401
        unknown = await api.get("/documents/" + "0" * 64, headers=owner)
        assert unknown.status_code == 404
        malformed = await api.get("/documents/not-a-hash", headers=owner)
        assert malformed.status_code == 422

        # A contributor of another team may not submit evidence here either: the decider says
        # so, and no event names the document.
        other = await upload(
            api,
            rec,
            [("theirs.pdf", sample(PDF, "theirs" + rec), PDF)],
            await bearer(pool, "contributor", "team-other"),
            evidence_id="esf-2",
        )
        assert other.status_code == 403 and other.json()["reason"] == "forbidden"
        theirs = other.json()["documents"][0]["href"]
        assert (await api.get(theirs, headers=await bearer(pool, "admin"))).status_code == 404


async def test_a_30_mb_upload_and_a_program_are_refused_and_change_nothing(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    rec = await owned_recommendation(gateway)
    owner = await bearer(pool, "contributor", TEAM)
    big = b"%PDF-1.7\n" + b"0" * (30 * 1000 * 1000)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as api:
        too_large = await upload(api, rec, [("minutes.pdf", big, PDF)], owner)
        program = await upload(api, rec, [("report.pdf", EXE, PDF)], owner)
        mixed = await upload(
            api, rec, [("ok.pdf", sample(PDF, "mixed" + rec), PDF), ("setup.exe", EXE, "")], owner
        )
        history = await until_projected(api, rec, 2, owner)

    assert too_large.status_code == 413, too_large.text
    assert too_large.json()["detail"] == [
        {
            "field": "documents[0]",
            "file": "minutes.pdf",
            "reason": "the file is larger than 25 MB (26214400 bytes), the most a document may "
            "hold (RECTRACK_MAX_DOCUMENT_BYTES)",
        }
    ]
    assert program.status_code == 415, program.text
    (error,) = program.json()["detail"]
    assert (error["field"], error["file"]) == ("documents[0]", "report.pdf")
    assert "it looks like a Windows program (MZ)" in error["reason"]
    assert mixed.status_code == 415
    assert [(e["field"], e["file"]) for e in mixed.json()["detail"]] == [
        ("documents[1]", "setup.exe")
    ]

    # Nothing changed: no event, no stored document (not even the mixed upload's good one).
    await asyncio.sleep(1)
    assert [e["type"] for e in await events_of(stack, rec)] == [
        "RecommendationIssued",
        "OwnerAssigned",
    ]
    assert len(history) == 2
    hashes = [hashlib.sha256(b).hexdigest() for b in (big, EXE, sample(PDF, "mixed" + rec))]
    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM documents WHERE sha256 = ANY($1::text[])", hashes
        )
    assert stored == 0


def verify_json(run_env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = rectrack(run_env, "verify", "--no-read-models", "--json", check=False)
    return done.returncode, orjson.loads(done.stdout)


async def test_verify_names_a_document_altered_in_the_table_and_one_deleted(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool, run_env: dict[str, str]
) -> None:
    rec = await owned_recommendation(gateway)
    first, second = sample(PDF, "verify-1" + rec), sample(CSV, "verify-2" + rec)
    altered, deleted = hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()
    owner = await bearer(pool, "contributor", TEAM)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as api:
        response = await upload(
            api, rec, [("esf.pdf", first, PDF), ("actions.csv", second, "text/csv")], owner
        )
        assert response.status_code == 201, response.text
        (event_id,) = response.json()["event_ids"]

    _, before = verify_json(run_env)
    mine = {altered, deleted}
    assert not [
        p
        for p in before["documents"]["missing"] + before["documents"]["altered"]
        if p["sha256"] in mine
    ]
    assert before["documents"]["intact"] >= 2

    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE documents SET content = overlay(content PLACING 'X'::bytea FROM 12) "
            "WHERE sha256 = $1",
            altered,
        )
        await conn.execute("DELETE FROM documents WHERE sha256 = $1", deleted)

    code, after = verify_json(run_env)
    assert code == 1
    (changed,) = [p for p in after["documents"]["altered"] if p["sha256"] == altered]
    (lost,) = [p for p in after["documents"]["missing"] if p["sha256"] == deleted]
    (event,) = [e for e in await events_of(stack, rec) if e["type"] == "EvidenceSubmitted"]
    assert event_id == event["event_id"]
    for problem, name in ((changed, "esf.pdf"), (lost, "actions.csv")):
        assert problem["recommendation_id"] == rec and problem["evidence_id"] == "esf-1"
        assert problem["event_id"] == event["event_id"] and problem["name"] == name
        assert problem["topic"] == stack.topics.events
    assert changed["reason"].startswith("the stored bytes hash to ")
    assert lost["reason"] == "no document is stored under this hash"

    text = rectrack(run_env, "verify", "--no-read-models", check=False)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert any(rec in line and "'esf.pdf'" in line and altered in line for line in lines), lines
    assert any(rec in line and "'actions.csv'" in line and deleted in line for line in lines)

    # An altered document is never served; uploading the original again repairs it.
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as api:
        refused = await api.get(f"/documents/{altered}", headers=owner)
        assert refused.status_code == 500 and "see rectrack verify" in refused.json()["detail"]
        again = await upload(api, rec, [("esf.pdf", first, PDF)], owner, evidence_id="esf-2")
        assert again.status_code == 201, again.text
        repaired = await api.get(f"/documents/{altered}", headers=owner)
        assert repaired.status_code == 200 and repaired.content == first
    _, healed = verify_json(run_env)
    assert not [p for p in healed["documents"]["altered"] if p["sha256"] == altered]


async def test_the_handover_pack_and_the_page_link_the_documents(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool, run_env: dict[str, str]
) -> None:
    rec = await owned_recommendation(gateway)
    pdf = sample(PDF, "handover" + rec)
    sha = hashlib.sha256(pdf).hexdigest()
    secret = await token(pool, "contributor", TEAM)
    owner = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as api:
        assert (await upload(api, rec, [("ESF final.pdf", pdf, PDF)], owner)).status_code == 201
        await until_projected(api, rec, 3, owner)
        pack = (await api.get(f"/recommendations/{rec}/handover", headers=owner)).json()
        (document,) = pack["evidence"][0]["documents"]
        assert document == {
            "name": "ESF final.pdf",
            "sha256": sha,
            "size": len(pdf),
            "media_type": PDF,
            "href": f"/documents/{sha}",
        }
    # The recommendation's page links it, and the link downloads in the signed-in session.
    cookies = await signed_in_cookies(stack.api_url, secret)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, cookies=cookies) as browser:
        page = await browser.get(f"/ui/recommendations/{rec}")
        link_html = f'<a class="govuk-link" href="/documents/{sha}" download>ESF final.pdf</a>'
        assert link_html in page.text
        link = await browser.get(f"/documents/{sha}")
        assert link.status_code == 200 and link.content == pdf

    markdown = rectrack(run_env, "handover", rec).stdout
    assert f"[ESF final.pdf]({stack.api_url}/documents/{sha}) (PDF, " in markdown
    as_json = orjson.loads(rectrack(run_env, "handover", rec, "--format", "json").stdout)
    assert as_json["evidence"][0]["documents"][0]["href"] == f"/documents/{sha}"


async def test_an_upload_resent_with_its_command_id_gets_its_first_outcome(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    rec = await owned_recommendation(gateway)
    owner = await bearer(pool, "contributor", TEAM)
    command_id = str(uuid.uuid4())
    files = [("documents", ("esf.pdf", sample(PDF, "resend" + rec), PDF))]
    fields = {"evidence_id": "esf-1", "summary": "s", "command_id": command_id}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as api:
        first = await api.post(
            f"/recommendations/{rec}/evidence", data=fields, files=files, headers=owner
        )
        again = await api.post(
            f"/recommendations/{rec}/evidence", data=fields, files=files, headers=owner
        )
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["command_id"] == again.json()["command_id"] == command_id
    assert [e["type"] for e in await events_of(stack, rec)].count("EvidenceSubmitted") == 1
