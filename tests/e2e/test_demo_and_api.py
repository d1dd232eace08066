"""End to end: the public-record demo through the decider and projector, then HTTP and CLI."""

import asyncio
import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from events.envelope import Actor
from events.registry import parse_event
from infra.kafka_clients import read_topic
from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from services.decider.loader import load_file
from services.domain.commands import dump_command
from services.web.tokens import create_token
from tests.builders import publish
from tests.cli import rectrack

pytestmark = pytest.mark.integration

# Published in the SPA Policing Performance Committee paper of 18 September 2024.
PUBLISHED = {
    "hate-crime-2021": (15, 10, 0, 5),
    "crime-audit-2020": (6, 1, 0, 5),
    "contact-assessment-model-2022": (8, 4, 0, 4),
    "domestic-abuse-phase-1-2023": (13, 3, 4, 6),
    "mental-health-2023": (13, 0, 13, 0),
}


async def test_the_report_for_18_september_2024_equals_the_published_table(
    demo_loaded: Settings, run_env: dict[str, str]
) -> None:
    await wait_until_projected(demo_loaded, RECOMMENDATIONS, timeout=60)
    report = json.loads(
        rectrack(run_env, "report", "--as-of", "2024-09-18", "--format", "json").stdout
    )
    got = {
        line["inspection_id"]: (
            line["total"],
            line["closed"],
            line["ongoing_on_track"],
            line["ongoing_delayed"],
        )
        for line in report["inspections"]
    }
    assert {k: got[k] for k in PUBLISHED} == PUBLISHED
    hate_crime = next(i for i in report["inspections"] if i["inspection_id"] == "hate-crime-2021")
    assert hate_crime["closed_since"] == [3, 8]
    assert report["since"] == "2024-03-12"


async def test_the_table_format_prints_every_inspection(
    demo_loaded: Settings, run_env: dict[str, str]
) -> None:
    await wait_until_projected(demo_loaded, RECOMMENDATIONS, timeout=60)
    table = rectrack(run_env, "report", "--as-of", "2024-09-18").stdout
    assert "Hate Crime" in table and "Mental Health" in table


async def _token(pool: asyncpg.Pool, role: str, team: str = "hmics") -> str:
    async with pool.acquire() as conn:
        _, token = await create_token(conn, Actor(name=f"{role} user", team=team, role=role))
    return token


def _publish_body(inspection_id: str) -> dict[str, Any]:
    return {
        "type": "PublishInspection",
        "effective_date": "2024-05-01",
        "data": {
            "inspection_id": inspection_id,
            "title": "Over HTTP",
            "inspectorate": "HMICS",
            "published_on": "2024-05-01",
        },
    }


async def test_http_command_is_decided_with_the_token_actor_and_reported(
    demo_loaded: Settings, pool: asyncpg.Pool
) -> None:
    inspection_id = f"http-{uuid4().hex[:8]}"
    body = _publish_body(inspection_id)
    auth = {"Authorization": f"Bearer {await _token(pool, 'inspector')}"}
    async with httpx.AsyncClient(base_url=demo_loaded.api_url, timeout=30, headers=auth) as client:
        created = await client.post("/commands", json=body)
        assert created.status_code == 201, created.text
        again = await client.post("/commands", json={**body, "command_id": str(uuid4())})
        assert again.status_code == 409
        assert again.json()["reason"] == "inspection_already_published"
        invalid = await client.post("/commands", json={**body, "data": {"title": 3}})
        assert invalid.status_code == 422
        assert "data.inspection_id" in {e["field"] for e in invalid.json()["detail"]}
        await wait_until_projected(demo_loaded, RECOMMENDATIONS, timeout=30)
        report = await client.get(
            "/report", params={"as_of": date.today().isoformat(), "inspection": inspection_id}
        )
        assert report.status_code == 200
        assert report.json()["inspections"][0]["title"] == "Over HTTP"
    async with pool.acquire() as conn:
        actor = await conn.fetchval(
            "SELECT actor_name FROM event_log WHERE command_id = $1",
            UUID(created.json()["command_id"]),
        )
    assert actor == "inspector user"


async def test_http_writes_need_a_token_and_the_actor_comes_from_it(
    demo_loaded: Settings, pool: asyncpg.Pool
) -> None:
    body = _publish_body(f"auth-{uuid4().hex[:8]}")
    viewer = {"Authorization": f"Bearer {await _token(pool, 'viewer')}"}
    async with httpx.AsyncClient(base_url=demo_loaded.api_url, timeout=30) as client:
        assert (await client.post("/commands", json=body)).status_code == 401
        bad = {"Authorization": "Bearer rt_not-a-token"}
        assert (await client.post("/commands", json=body, headers=bad)).status_code == 401
        assert (await client.get("/report", params={"as_of": "2024-09-18"})).status_code == 401
        forbidden = await client.post("/commands", json=body, headers=viewer)
        assert forbidden.status_code == 403
        assert forbidden.json()["reason"] == "forbidden"
        forged = {**body, "actor": {"name": "Someone", "team": "hmics", "role": "admin"}}
        refused = await client.post("/commands", json=forged, headers=viewer)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["field"] == "actor"
        readable = await client.get("/report", params={"as_of": "2024-09-18"}, headers=viewer)
        assert readable.status_code == 200


def test_tokens_are_created_once_listed_without_secrets_and_revoked(
    demo_loaded: Settings, run_env: dict[str, str]
) -> None:
    create = ("tokens", "create", "--name", "Pat", "--team", "ppcw", "--role", "contributor")
    token = rectrack(run_env, *create).stdout.strip()
    assert token.startswith("rt_")
    listing = rectrack(run_env, "tokens", "list").stdout
    assert "Pat" in listing and token not in listing
    (token_id,) = [
        word
        for line in listing.splitlines()
        if "Pat" in line
        for word in re.findall(r"[0-9a-f]{8}-[0-9a-f-]{27}", line)
    ]
    rectrack(run_env, "tokens", "revoke", token_id)
    response = httpx.get(
        f"{demo_loaded.api_url}/report",
        params={"as_of": "2024-09-18"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


def test_status_names_the_api_and_the_broker(
    demo_loaded: Settings, run_env: dict[str, str]
) -> None:
    out = rectrack(run_env, "status").stdout
    assert demo_loaded.api_url in out
    assert demo_loaded.bootstrap_servers in out
    assert "Projection: recommendations at" in out
    assert "Dead letters:" in out


def test_loading_needs_an_admin_and_each_event_records_the_loader(
    stack: Settings, tmp_path: Path
) -> None:
    refused_file, loaded_file = tmp_path / "refused.ndjson", tmp_path / "loaded.ndjson"
    refused_file.write_bytes(dump_command(publish()) + b"\n")
    loaded = publish()
    loaded_file.write_bytes(dump_command(loaded) + b"\n\n" + b'{"type": "Nope"}\n')

    contributor = Actor(name="Casey", team="team-a", role="contributor")
    refused = load_file(stack, refused_file, loaded_by=contributor, quiet=True)
    assert (refused["accepted"], refused["reasons"]) == (0, {"forbidden": 1})

    admin = Actor(name="Alex Admin", team="secretariat", role="admin")
    summary = load_file(stack, loaded_file, loaded_by=admin, quiet=True)
    assert (summary["accepted"], summary["reasons"]) == (1, {"invalid_command": 1})
    assert summary["rejections"][0]["line"] == 3  # type: ignore[index]
    events = [parse_event(r.value) for r in asyncio.run(read_topic(stack, stack.topics.events))]
    event = next(e for e in events if e.command_id == loaded.command_id)
    assert event.loaded_by == admin
    assert event.actor == loaded.actor


async def test_replay_rebuilds_identical_read_models_while_the_api_keeps_answering(
    demo_loaded: Settings, run_env: dict[str, str], pool: asyncpg.Pool
) -> None:
    await wait_until_projected(demo_loaded, RECOMMENDATIONS, timeout=60)
    auth = {"Authorization": f"Bearer {await _token(pool, 'viewer')}"}
    replay = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "replay",
        env=run_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    answers: list[int] = []
    async with httpx.AsyncClient(base_url=demo_loaded.api_url, timeout=10, headers=auth) as api:
        while replay.returncode is None:
            response = await api.get("/report", params={"as_of": "2024-09-18"})
            answers.append(response.status_code)
            try:
                await asyncio.wait_for(replay.wait(), timeout=0.05)
            except TimeoutError:
                continue
        out, errors = await replay.communicate()
        after = await api.get("/report", params={"as_of": "2024-09-18"})
    assert replay.returncode == 0, errors.decode()[-2000:]
    text = out.decode()
    assert "switched over" in text and " NO" not in text
    assert text.count(" yes ") >= 8  # every read-model table has the same checksum
    assert answers and set(answers) == {200}
    got = {line["inspection_id"]: line["total"] for line in after.json()["inspections"]}
    assert got["hate-crime-2021"] == 15


async def test_metrics_expose_projection_lag(demo_loaded: Settings, pool: asyncpg.Pool) -> None:
    await wait_until_projected(demo_loaded, RECOMMENDATIONS, timeout=60)
    headers = {"Authorization": f"Bearer {await _token(pool, 'viewer')}"}
    async with httpx.AsyncClient(base_url=demo_loaded.api_url) as api:
        assert (await api.get("/metrics")).status_code == 401
        metrics = (await api.get("/metrics", headers=headers)).text
    assert 'rectrack_projection_lag{projection="recommendations"} 0.0' in metrics
    assert "rectrack_log_end_offset{" in metrics


async def test_reads_of_inspections_and_recommendations(
    demo_loaded: Settings, pool: asyncpg.Pool
) -> None:
    await wait_until_projected(demo_loaded, RECOMMENDATIONS, timeout=60)
    auth = {"Authorization": f"Bearer {await _token(pool, 'viewer')}"}
    async with httpx.AsyncClient(base_url=demo_loaded.api_url, timeout=30, headers=auth) as api:
        listing = (await api.get("/inspections")).json()
        hate = (await api.get("/inspections/hate-crime-2021")).json()
        rec = (await api.get("/recommendations/hate-crime-2021/r10")).json()
        handover = (
            await api.get(
                "/recommendations/hate-crime-2021/r10/handover", params={"as_of": "2024-09-18"}
            )
        ).json()
        history = (await api.get("/recommendations/hate-crime-2021/r10/history")).json()
        missing = await api.get("/recommendations/hate-crime-2021/r99")
    assert {i["inspection_id"]: i["total"] for i in listing}["hate-crime-2021"] == 15
    assert len([r for r in hate["recommendations"] if r["kind"] == "recommendation"]) == 15
    assert rec["history"] == history
    assert handover["outstanding_asks"] and "evidence" in handover["outstanding_asks"][0]
    assert missing.status_code == 404
