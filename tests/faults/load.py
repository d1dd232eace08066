"""What the fault suites share: the app's components as processes of their own, a steady load
through the API and the commands topic, and the ledger of what it sent and was told."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.chain import ChainReport
from events.envelope import Actor
from events.registry import parse_event
from infra.database import create_pool, migrate
from infra.kafka_clients import read_topic
from infra.processes import free_port
from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from projections.verify import verify_chain, verify_read_models
from services.decider.gateway import CommandGateway
from services.web.tokens import create_token
from tests.brokers import free_port_block
from tests.builders import ADMIN, command, contributor, issue, publish, rec_command
from tests.signing import TeamProducer, new_signer, register_key

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RECS = 8
ADMIN_ACTOR = Actor.model_validate(ADMIN)

RATE_PER_SECOND = 8  # per path (HTTP and topic)
TEAM_A = contributor("team-a")  # the owner of the recommendations the load reports on


class Processes:
    """The app's components as separate processes, so each can be killed on its own."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.log = open(os.path.join(env["RECTRACK_HOME"], "components.log"), "ab")  # noqa: SIM115

    def start(self, name: str) -> None:
        component = name.rstrip("ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "-c", component],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def stop_all(self) -> None:
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.log.close()


@dataclass
class Ledger:
    """What the load sent and what it was told."""

    sent: set[uuid.UUID] = field(default_factory=set)
    acknowledged: set[uuid.UUID] = field(default_factory=set)  # 201, or accepted outcome
    http_statuses: Counter[int] = field(default_factory=Counter)


async def http_load(
    url: str, token: str, recs: list[str], ledger: Ledger, stop: asyncio.Event
) -> None:
    """POST commands at a steady rate; resend what was not acknowledged, with its command_id."""
    backlog: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        base_url=url, timeout=15, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        n = 0
        while not stop.is_set() or backlog:
            if not stop.is_set():
                n += 1
                cid = uuid.uuid4()
                ledger.sent.add(cid)
                backlog.append(
                    {
                        "type": "ReportProgress",
                        "command_id": str(cid),
                        "data": {
                            "recommendation_id": recs[n % len(recs)],
                            "position": f"http {n}",
                            "delivery_status": "on_track",
                        },
                    }
                )
            body = backlog.pop(0)
            try:
                response = await api.post("/commands", json=body, params={"wait": 5})
                ledger.http_statuses[response.status_code] += 1
                if response.status_code == 201:
                    ledger.acknowledged.add(uuid.UUID(body["command_id"]))
                elif response.status_code != 202:  # 202: decided later, read from outcomes
                    backlog.append(body)
            except httpx.HTTPError:
                ledger.http_statuses[0] += 1
                backlog.append(body)
            await asyncio.sleep(1 / RATE_PER_SECOND)


async def topic_load(
    team: TeamProducer, recs: list[str], ledger: Ledger, stop: asyncio.Event
) -> None:
    """Another team's system: commands signed with its own key, straight onto the topic."""
    n = 0
    while not stop.is_set():
        n += 1
        rec_id = recs[n % len(recs)]
        cmd = command(
            "ReportProgress",
            {"recommendation_id": rec_id, "position": f"topic {n}", "delivery_status": "on_track"},
            actor=TEAM_A,
            effective_date=None,
        )
        ledger.sent.add(cmd.command_id)
        try:
            await team.send(rec_id, cmd)
        except Exception:
            await asyncio.sleep(1)
            try:
                await team.send(rec_id, cmd)
            except Exception:
                ledger.sent.discard(cmd.command_id)  # never acknowledged by the broker
        await asyncio.sleep(1 / RATE_PER_SECOND)


def instance_env(home: Path, label: str, **extra: str) -> dict[str, str]:
    """An instance of its own (home, ports, topics), so a suite may kill its every part."""
    base = free_port_block(6)  # room for three Kafka nodes' client and controller ports
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "RECTRACK_KAFKA_BROKERS")
    }
    return env | {
        "RECTRACK_HOME": str(home),
        "RECTRACK_KAFKA_PORT": str(base),
        "RECTRACK_KAFKA_CONTROLLER_PORT": str(base + 1),
        "RECTRACK_PG_PORT": str(free_port()),
        "RECTRACK_API_PORT": str(free_port()),
        "RECTRACK_PARTITIONS": "4",
        "RECTRACK_TOPIC_PREFIX": f"{label}-{uuid.uuid4().hex[:6]}.",
        **extra,
    }


@dataclass
class Scene:
    """What the load needs: an admin token, a gateway, a team's system, the recommendations."""

    token: str
    gateway: CommandGateway
    team: TeamProducer
    rec_ids: list[str]


async def prepare_scene(settings: Settings) -> Scene:
    """Wait for the API; an inspection of RECS recommendations owned by team A; its key."""
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=5) as api:
        for _ in range(240):
            try:
                if (await api.get("/health")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    pool = await create_pool(settings)
    await migrate(pool)
    async with pool.acquire() as conn:
        _, token = await create_token(conn, ADMIN_ACTOR)
    await pool.close()
    gateway = CommandGateway(settings)
    await gateway.start()
    insp = publish(f"faults-{uuid.uuid4().hex[:6]}")
    recs = [issue(insp.stream_id, n) for n in range(1, RECS + 1)]
    owners = [
        rec_command("AssignOwner", r.stream_id, team="team-a", owner_role="lead") for r in recs
    ]
    setup = await gateway.submit([insp, *recs, *owners], timeout=120)
    assert {o.status for o in setup.values()} == {"accepted"}
    # The team's key, registered by an admin through the API.
    team_key = new_signer()
    await register_key(settings.api_url, {"Authorization": f"Bearer {token}"}, team_key, TEAM_A)
    team = TeamProducer(settings, team_key)
    await team.__aenter__()
    return Scene(token, gateway, team, [r.stream_id for r in recs])


Fault = tuple[float, str, Callable[[], object]]


async def run_under_load(
    settings: Settings, scene: Scene, faults: Sequence[Fault], *, seconds: float
) -> tuple[Ledger, list[str]]:
    """Load through the API and the topic while the faults happen at their times (seconds
    from the start); then the load stops and resends what was not acknowledged."""
    ledger, stop = Ledger(), asyncio.Event()
    loads = [
        asyncio.create_task(http_load(settings.api_url, scene.token, scene.rec_ids, ledger, stop)),
        asyncio.create_task(topic_load(scene.team, scene.rec_ids, ledger, stop)),
    ]
    started_at, timeline = time.monotonic(), []
    for at, what, action in faults:
        await asyncio.sleep(max(0.0, started_at + at - time.monotonic()))
        await asyncio.to_thread(action)
        timeline.append(f"t={time.monotonic() - started_at:5.1f}s {what}")
    await asyncio.sleep(max(0.0, started_at + seconds - time.monotonic()))
    stop.set()
    await asyncio.wait_for(asyncio.gather(*loads), timeout=240)
    await scene.team.__aexit__()
    return ledger, timeline


async def verdict(
    settings: Settings, ledger: Ledger, gateway: CommandGateway
) -> tuple[dict[str, Any], ChainReport, list[str]]:
    """What became of everything sent: counts, the log's chains and the read models."""
    outcomes = await gateway.wait_for(list(ledger.sent), timeout=180)
    ledger.acknowledged |= {cid for cid, o in outcomes.items() if o.status == "accepted"}
    await gateway.stop()
    await wait_until_projected(settings, RECOMMENDATIONS, timeout=180)

    events = [parse_event(r.value) for r in await read_topic(settings, settings.topics.events)]
    per_command = Counter(e.command_id for e in events)
    appended = {cid for cid in ledger.sent if per_command[cid] == 1}
    doubled = [cid for cid, n in per_command.items() if n > 1]
    versions = Counter((e.stream_id, e.stream_version) for e in events)
    chain = await verify_chain(settings)
    tables = await verify_read_models(settings, RECOMMENDATIONS)
    differing = [t for t, (live, rebuilt) in tables.items() if live != rebuilt]
    pool = await create_pool(settings, max_size=1)
    async with pool.acquire() as conn:
        projected = await conn.fetchval(
            "SELECT count(*) FROM event_log WHERE command_id = ANY($1::uuid[])", list(ledger.sent)
        )
    await pool.close()
    counts = {
        "sent": len(ledger.sent),
        "acknowledged": len(ledger.acknowledged),
        "appended": len(appended),
        "projected": projected,
        "lost": len(ledger.acknowledged - appended),
        "doubled": len(doubled),
        "unacknowledged_appended": len(appended - ledger.acknowledged),
        "stream_version_repeats": sum(n > 1 for n in versions.values()),
        "http_statuses": dict(ledger.http_statuses),
    }
    return counts, chain, differing


def record_counts(
    name: str, counts: dict[str, Any], timeline: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Counts and fault timeline into test-artifacts/NAME-counts.json, and printed."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}-counts.json").write_text(
        json.dumps({**counts, "faults": timeline}, indent=2)
    )
    with capsys.disabled():
        print(f"\n{name} suite: {json.dumps(counts)}")


def assert_nothing_lost_or_doubled(
    counts: dict[str, Any], chain: ChainReport, differing: list[str]
) -> None:
    """The suites' verdict: every acknowledged command appended once and projected, nothing
    appended twice or unacknowledged, the chains whole and sealed, read models = a replay."""
    assert counts["projected"] == counts["appended"], "an appended event is missing"
    assert counts["lost"] == 0, f"{counts['lost']} acknowledged commands have no event"
    assert counts["doubled"] == 0 and counts["stream_version_repeats"] == 0, "appended twice"
    assert counts["unacknowledged_appended"] == 0, "an appended command was never acknowledged"
    assert counts["acknowledged"] == counts["sent"]
    assert not chain.breaks
    # Every event a decider wrote is sealed, however its batches were cut short.
    assert not chain.unauthenticated and not chain.unreadable, chain.unauthenticated[:3]
    assert not differing, f"read models differ from a clean replay: {differing}"
