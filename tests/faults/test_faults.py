"""Fault injection under a steady load: every process is SIGKILLed in turn, two deciders and two
projectors share the partitions, PostgreSQL and the broker go away for seconds. Afterwards
nothing acknowledged is lost, nothing is applied twice, and the read models equal the log."""

import asyncio
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from events.envelope import Actor
from events.registry import parse_event
from infra.database import create_pool, migrate
from infra.kafka_broker import LocalKafka
from infra.kafka_clients import read_topic
from infra.postgres import LocalPostgres
from infra.processes import free_port, pid_alive
from infra.settings import Settings
from infra.stack import start_infrastructure, stop_infrastructure
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from projections.verify import verify_chain, verify_read_models
from services.decider.gateway import CommandGateway
from services.web.tokens import create_token
from tests.builders import ADMIN, issue, publish, rec_command
from tests.faults.load import TEAM_A, Ledger, Processes, http_load, topic_load
from tests.signing import TeamProducer, new_signer, register_key

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RECS = 8
ADMIN_ACTOR = Actor.model_validate(ADMIN)


@pytest.fixture(scope="module")
def fault_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An instance of its own: its broker and database are the ones this suite kills."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env |= {
        "RECTRACK_HOME": str(tmp_path_factory.mktemp("faults-home")),
        "RECTRACK_KAFKA_PORT": str(free_port()),
        "RECTRACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "RECTRACK_PG_PORT": str(free_port()),
        "RECTRACK_API_PORT": str(free_port()),
        "RECTRACK_PARTITIONS": "4",
        "RECTRACK_TOPIC_PREFIX": f"faults-{uuid.uuid4().hex[:6]}.",
    }
    settings = Settings.from_env(env)
    start_infrastructure(settings)
    yield env
    stop_infrastructure(settings)


def kill_postgres(settings: Settings) -> None:
    pid = LocalPostgres(settings).pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def kill_kafka(settings: Settings) -> None:
    pid = LocalKafka(settings).pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.1)


@pytest.fixture
async def started(fault_env: dict[str, str]) -> AsyncIterator[tuple[Settings, Processes]]:
    settings = Settings.from_env(fault_env)
    processes = Processes(fault_env)
    for name in ("api", "decidera", "deciderb", "projectora", "projectorb"):
        processes.start(name)
    yield settings, processes
    processes.stop_all()


async def test_nothing_acknowledged_is_lost_and_nothing_is_applied_twice(
    started: tuple[Settings, Processes], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, processes = started
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
    rec_ids = [r.stream_id for r in recs]

    # The team's key, registered by an admin through the API.
    team_key = new_signer()
    await register_key(settings.api_url, {"Authorization": f"Bearer {token}"}, team_key, TEAM_A)
    team = TeamProducer(settings, team_key)
    await team.__aenter__()

    ledger, stop = Ledger(), asyncio.Event()
    loads = [
        asyncio.create_task(http_load(settings.api_url, token, rec_ids, ledger, stop)),
        asyncio.create_task(topic_load(team, rec_ids, ledger, stop)),
    ]
    faults = [
        (5, "SIGKILL decider a (b takes over)", lambda: processes.kill("decidera")),
        (10, "SIGKILL projector a (b takes over)", lambda: processes.kill("projectora")),
        (
            15,
            "SIGKILL the API, restart it",
            lambda: processes.restart("api"),
        ),
        (22, "SIGKILL PostgreSQL", lambda: kill_postgres(settings)),
        (27, "restart PostgreSQL", lambda: LocalPostgres(settings).start()),
        (33, "SIGKILL the broker", lambda: kill_kafka(settings)),
        (37, "restart the broker", lambda: LocalKafka(settings).start()),
        (
            48,
            "SIGKILL decider b, restart it",
            lambda: processes.restart("deciderb"),
        ),
        (
            52,
            "SIGKILL projector b, restart it",
            lambda: processes.restart("projectorb"),
        ),
    ]
    started_at, timeline = time.monotonic(), []
    for at, what, action in faults:
        await asyncio.sleep(max(0.0, started_at + at - time.monotonic()))
        await asyncio.to_thread(action)
        timeline.append(f"t={time.monotonic() - started_at:5.1f}s {what}")
    await asyncio.sleep(max(0.0, started_at + 60 - time.monotonic()))
    stop.set()
    await asyncio.wait_for(asyncio.gather(*loads), timeout=240)
    await team.__aexit__()

    outcomes = await gateway.wait_for(list(ledger.sent), timeout=180)
    ledger.acknowledged |= {cid for cid, o in outcomes.items() if o.status == "accepted"}
    await gateway.stop()
    await wait_until_projected(settings, RECOMMENDATIONS, timeout=180)

    events = [parse_event(r.value) for r in await read_topic(settings, settings.topics.events)]
    per_command = Counter(e.command_id for e in events)
    appended = {cid for cid in ledger.sent if per_command[cid] == 1}
    lost = ledger.acknowledged - appended
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
        "lost": len(lost),
        "doubled": len(doubled),
        "http_statuses": dict(ledger.http_statuses),
        "faults": timeline,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "faults-counts.json").write_text(json.dumps(counts, indent=2))
    with capsys.disabled():
        print(f"\nfault suite: {json.dumps({k: v for k, v in counts.items() if k != 'faults'})}")
    assert projected == len(appended), "an appended event is missing from the read model"
    assert not lost, f"{len(lost)} acknowledged commands have no event"
    assert not doubled and max(versions.values()) == 1, "an event was appended twice"
    assert appended == ledger.acknowledged, "an appended command was never acknowledged"
    assert len(ledger.acknowledged) == len(ledger.sent)
    assert not chain.breaks
    # Every event a decider wrote is sealed, however its batches were cut short.
    assert not chain.unauthenticated and not chain.unreadable, chain.unauthenticated[:3]
    assert not differing, f"read models differ from a clean replay: {differing}"
