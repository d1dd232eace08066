"""Natural input on the real stack (issue 16): a committee and a team given by their names.

Commands go through the gateway, the decider (Kafka) and the projector (PostgreSQL) of this
run's `rectrack run`; the report and the paper are read back by the committee's name and by its
id, from Python, the CLI and HTTP. The history: an inspection of three recommendations, 1 closed
in March, the Policing Performance Committee given its update on 12 June 2024 (by name), and 2
(owned by a team given by its name) closed in August. "Since the last update" at the 18
September meeting is 12 June, so it covers 2 alone.
"""

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations import queries
from projections.recommendations.projection import RECOMMENDATIONS
from services.decider.gateway import CommandGateway
from services.domain.commands import Command
from services.paper.assemble import build_paper
from services.paper.render import render_markdown
from tests.builders import ADMIN, INSPECTOR, command, contributor, issue, publish
from tests.cli import rectrack
from tests.e2e.helpers import bearer

pytestmark = pytest.mark.integration

PPC = "Policing Performance Committee"
PPC_ID = "policing-performance-committee"
TYPO = "Policing Performance Comittee"
TEAM = "Partnerships, Prevention & Community Wellbeing"
TEAM_ID = "partnerships-prevention-and-community-wellbeing"
UPDATE_DAY = date(2024, 6, 12)
MEETING = date(2024, 9, 18)


@dataclass(frozen=True)
class Natural:
    """What the module's history made: the inspection and its recommendations' ids."""

    inspection_id: str
    recs: tuple[str, str, str]


def closed(rec_id: str, on: date, actor: dict[str, str]) -> list[Command]:
    evidence = f"esf-{on.isoformat()}"
    return [
        command(
            "SubmitEvidence",
            {"recommendation_id": rec_id, "evidence_id": evidence, "summary": "ESF"},
            actor=actor,
            effective_date=on,
        ),
        command(
            "ProposeClosure",
            {"recommendation_id": rec_id, "rationale": "met", "evidence_ids": [evidence]},
            actor=actor,
            effective_date=on,
        ),
        command(
            "RecordInspectorateDecision",
            {"recommendation_id": rec_id, "decision": "closed", "rationale": "Met in full."},
            actor=INSPECTOR,
            effective_date=on,
        ),
    ]


@pytest.fixture(scope="module")
async def natural(gateway: CommandGateway, stack: Settings) -> Natural:
    insp = publish(published_on="2024-01-10")
    recs = [issue(insp.stream_id, n) for n in (1, 2, 3)]
    r1, r2, r3 = (r.stream_id for r in recs)
    history = [
        insp,
        *recs,
        command(
            "AssignOwner",
            {"recommendation_id": r2, "team": TEAM, "owner_role": "Lead"},
            actor=ADMIN,
            effective_date=date(2024, 2, 1),
        ),
        command(
            "AssignOwner",
            {"recommendation_id": r3, "team": TEAM, "owner_role": "Lead"},
            actor=ADMIN,
            effective_date=date(2024, 2, 1),
        ),
        *closed(r1, date(2024, 3, 1), ADMIN),
        command(
            "RecordCommitteeUpdate",
            {"committee": PPC, "meeting_date": UPDATE_DAY.isoformat(), "title": "HMICS update"},
            actor=ADMIN,
            effective_date=UPDATE_DAY,
        ),
        # The owning team's own contributor, its token naming the team by its id.
        *closed(r2, date(2024, 8, 1), contributor(TEAM_ID)),
    ]
    outcomes = await gateway.submit(history, timeout=60)
    refused = {
        c.type: (o.reason, o.detail)
        for c in history
        if (o := outcomes[c.command_id]).status != "accepted"
    }
    assert not refused, refused
    await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)
    return Natural(insp.stream_id, (r1, r2, r3))


async def test_the_committee_update_given_by_name_is_recorded_with_its_id_and_name(
    natural: Natural, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT committee, committee_name, meeting_date FROM committee_updates "
            "WHERE committee_name = $1",
            PPC,
        )
        found = await queries.resolve_committee(conn, PPC)
    assert [tuple(r) for r in rows] == [(PPC_ID, PPC, UPDATE_DAY)]
    assert (found.committee, found.committee_name) == (PPC_ID, PPC)


async def test_the_report_by_name_and_by_id_agree_and_count_only_what_came_after(
    natural: Natural, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        reports = [
            await queries.report(
                conn, as_of=MEETING, inspection_id=natural.inspection_id, committee=given
            )
            for given in (PPC, PPC_ID, PPC.upper())
        ]
        whole = await queries.report(
            conn, as_of=MEETING, inspection_id=natural.inspection_id, since=date(2024, 1, 1)
        )
    by_name, by_id, shouted = (r.model_dump() for r in reports)
    assert by_name == by_id == shouted
    report = reports[0]
    assert (report.committee, report.committee_name) == (PPC_ID, PPC)
    assert (report.since, report.since_basis) == (UPDATE_DAY, "committee_update")
    assert report.since_update is not None and report.since_update.committee_name == PPC
    assert "since 12 June 2024, the last update to Policing Performance Committee" in (
        report.since_note
    )
    line = report.inspections[0]
    assert line.closed_since == [2]  # 1 closed before the update
    assert (line.total, line.closed) == (3, 2)
    assert whole.inspections[0].closed_since == [1, 2]


async def test_a_committee_with_no_update_is_refused_never_widened(
    natural: Natural, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(queries.UnknownCommittee) as typo:
            await queries.report(conn, as_of=MEETING, committee=TYPO)
        with pytest.raises(queries.UnknownCommittee) as garbage:
            await build_paper(conn, meeting=MEETING, committee="!!!")
    assert "'policing-performance-comittee'" in str(typo.value)
    assert f"{PPC_ID} ({PPC})" in str(typo.value)  # the committees there are
    assert "names no committee" in str(garbage.value)


async def test_no_earlier_update_is_said_not_silently_widened(
    natural: Natural, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        first = await build_paper(conn, meeting=UPDATE_DAY, committee=PPC)
    assert (first.since, first.since_basis, first.committee_name) == (
        None,
        "no_earlier_update",
        PPC,
    )
    assert first.since_note.startswith(
        "No earlier update to Policing Performance Committee is recorded before 12 June 2024"
    )
    section = next(s for s in first.sections if s.line.inspection_id == natural.inspection_id)
    assert [c.number for c in section.closures] == [1]  # everything, and the paper says so
    assert first.since_note in render_markdown(first).replace("\\", "")


async def test_the_paper_by_name_and_by_id_agree(natural: Natural, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        by_name = await build_paper(conn, meeting=MEETING, committee=PPC)
        by_id = await build_paper(conn, meeting=MEETING, committee=PPC_ID)
    assert by_name == by_id
    assert (by_name.committee, by_name.committee_name, by_name.since) == (PPC_ID, PPC, UPDATE_DAY)
    assert UPDATE_DAY in by_name.committee_dates
    section = next(s for s in by_name.sections if s.line.inspection_id == natural.inspection_id)
    assert [c.number for c in section.closures] == [2]
    # The team given by its name is shown by it; the report keeps its id.
    assert {p.number: p.owner for p in section.progress} == {3: TEAM}
    assert {r["number"]: r["owner"] for r in section.line.recommendations}[3] == TEAM_ID
    markdown = render_markdown(by_name)
    assert f"Committee: {PPC}." in markdown
    assert f"--committee {PPC_ID} " in markdown
    async with pool.acquire() as conn:
        pack = await queries.handover(conn, natural.recs[1], as_of=MEETING)
    assert pack is not None
    assert (pack.owners[-1].team, pack.owners[-1].shown_team) == (TEAM_ID, TEAM)


def report_json(run_env: dict[str, str], natural: Natural, committee: str) -> dict[str, Any]:
    done = rectrack(
        run_env,
        "report",
        "--as-of",
        MEETING.isoformat(),
        "--inspection",
        natural.inspection_id,
        "--committee",
        committee,
        "--format",
        "json",
    )
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


async def test_the_cli_takes_the_committee_by_name_or_id(
    natural: Natural, run_env: dict[str, str]
) -> None:
    by_name = report_json(run_env, natural, PPC)
    assert by_name == report_json(run_env, natural, PPC_ID)
    assert (by_name["since"], by_name["committee_name"]) == (UPDATE_DAY.isoformat(), PPC)
    assert by_name["inspections"][0]["closed_since"] == [2]
    paper = rectrack(
        run_env, "paper", "--meeting", MEETING.isoformat(), "--committee", PPC, "--format", "md"
    )
    assert f"Committee: {PPC}." in paper.stdout
    first = rectrack(
        run_env, "paper", "--meeting", UPDATE_DAY.isoformat(), "--committee", PPC, "--format", "md"
    )
    assert "note: No earlier update to Policing Performance Committee" in first.stderr
    typo = rectrack(
        run_env, "paper", "--meeting", MEETING.isoformat(), "--committee", TYPO, check=False
    )
    assert typo.returncode == 1
    assert "--committee:" in typo.stderr and PPC_ID in typo.stderr


async def test_the_api_takes_the_committee_by_name_or_id(
    natural: Natural, stack: Settings, pool: asyncpg.Pool
) -> None:
    viewer = await bearer(pool, "viewer")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, headers=viewer) as api:
        reports = [
            await api.get(
                "/report",
                params={
                    "as_of": MEETING.isoformat(),
                    "inspection": natural.inspection_id,
                    "committee": given,
                },
            )
            for given in (PPC, PPC_ID)
        ]
        assert [r.status_code for r in reports] == [200, 200]
        assert reports[0].json() == reports[1].json()
        assert reports[0].json()["since"] == UPDATE_DAY.isoformat()
        typo = await api.get("/report", params={"as_of": MEETING.isoformat(), "committee": TYPO})
        assert typo.status_code == 422
        assert typo.json()["detail"][0]["field"] == "committee"
        paper = await api.get(
            "/paper", params={"meeting": MEETING.isoformat(), "committee": PPC, "format": "md"}
        )
        assert paper.status_code == 200, paper.text[:300]
        assert f"Committee: {PPC}." in paper.text
        no_paper = await api.get(
            "/paper", params={"meeting": MEETING.isoformat(), "committee": TYPO, "format": "md"}
        )
        assert no_paper.status_code == 422
        assert no_paper.json()["detail"][0]["field"] == "committee"
