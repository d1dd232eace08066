"""Metrics, health and supervision on an instance of its own (issue 17, parts 3–5).

The suite owns its broker and PostgreSQL (it stops the database) and runs `rectrack run
--no-infrastructure` with a metrics token, the API's metrics port and each worker's port set.
The tests run in order: scrape, refuse without the token, readiness while PostgreSQL is away,
then a SIGKILLed decider brought back by the supervisor.
"""

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.postgres import LocalPostgres
from infra.processes import free_port, pid_alive
from infra.settings import Settings
from infra.stack import start_infrastructure, stop_infrastructure
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from services.cli.stack import SUPERVISOR_STATE
from services.decider.gateway import CommandGateway
from tests.builders import publish
from tests.cli import rectrack, start_app
from tests.faults.load import instance_env

pytestmark = pytest.mark.integration

METRICS_TOKEN = "metrics-test-token"
AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
Instance = tuple[Settings, Path, dict[str, str]]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def instance(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Instance]:
    env = instance_env(
        tmp_path_factory.mktemp("metrics-home"),
        "metrics",
        RECTRACK_METRICS_TOKEN=METRICS_TOKEN,
        RECTRACK_METRICS_PORT=str(free_port()),
        RECTRACK_DECIDER_METRICS_PORT=str(free_port()),
        RECTRACK_PROJECTOR_METRICS_PORT=str(free_port()),
        RECTRACK_LOG_LEVEL="info",
    )
    settings = Settings.from_env(env)
    start_infrastructure(settings)
    log_path = settings.log_dir / "metrics-stack.log"
    app = start_app(env, settings.api_url, log_path)
    try:
        _wait(lambda: _ready(settings, "decider") and _ready(settings, "projector"), 90)
        yield settings, log_path, env
    finally:
        app.send_signal(signal.SIGTERM)
        try:
            app.wait(timeout=40)
        except subprocess.TimeoutExpired:
            app.kill()
        stop_infrastructure(settings)


def _url(settings: Settings, component: str) -> str:
    if component == "api":
        return settings.api_url
    return f"http://127.0.0.1:{settings.component_port(component)}"


def _get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=10)


def _ready(settings: Settings, component: str) -> bool:
    try:
        return _get(f"{_url(settings, component)}/health/ready").status_code == 200
    except httpx.HTTPError:
        return False


def _wait(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.3)


def _samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def _decide_some(settings: Settings) -> None:
    """One accepted command, one rejected (the same inspection published twice), one dead
    letter (bytes that are no command)."""
    gateway = CommandGateway(settings)
    await gateway.start()
    try:
        inspection = f"insp-metrics-{time.time_ns()}"
        first, again = publish(inspection), publish(inspection)
        outcomes = await gateway.submit([first], timeout=60)
        assert outcomes[first.command_id].status == "accepted"
        outcomes = await gateway.submit([again], timeout=60)
        assert outcomes[again.command_id].status == "rejected"
        await gateway.send_raw(None, b"this is no command")
    finally:
        await gateway.stop()


def test_metrics_of_every_component_are_scraped(
    instance: Instance,
) -> None:
    settings, _, _ = instance
    asyncio.run(_decide_some(settings))
    asyncio.run(wait_until_projected(settings, RECOMMENDATIONS, timeout=60))
    _get(f"{settings.api_url}/health")

    def dead_lettered() -> bool:
        text = _get(f"{_url(settings, 'decider')}/metrics", AUTH).text
        return _value(_samples(text), "rectrack_dead_letters_total") >= 1

    _wait(dead_lettered, 30)
    api = _samples(_get(f"{settings.api_url}/metrics", AUTH).text)
    decider = _samples(_get(f"{_url(settings, 'decider')}/metrics", AUTH).text)
    projector = _samples(_get(f"{_url(settings, 'projector')}/metrics", AUTH).text)

    # Requests by method, route template and status, with their latency.
    assert _value(api, "rectrack_http_requests_total", method="GET", route="/health") >= 1
    assert (
        _value(
            api,
            "rectrack_http_request_duration_seconds_count",
            method="GET",
            route="/health",
            status="200",
        )
        >= 1
    )
    # Accepted and rejected by reason, counted in the decider.
    assert _value(decider, "rectrack_commands_accepted_total", type="PublishInspection") >= 1
    rejected = {
        dict(ls)["reason"]
        for (n, ls), v in decider.items()
        if n == "rectrack_commands_rejected_total" and v > 0
    }
    assert rejected, "no rejection counted"
    assert _value(decider, "rectrack_dead_letters_total") >= 1
    # Batch durations.
    assert _value(decider, "rectrack_decide_batch_duration_seconds_count") >= 2
    assert (
        _value(
            projector,
            "rectrack_projection_batch_duration_seconds_count",
            projection="recommendations",
        )
        >= 1
    )
    # Consumer lag per partition, and the lag the API measures.
    assert any(n == "rectrack_consumer_lag" for n, _ in decider)
    assert any(n == "rectrack_consumer_lag" for n, _ in projector)
    assert _value(api, "rectrack_projection_lag", projection="recommendations") == 0
    assert any(n == "rectrack_projection_partition_lag" for n, _ in api)
    assert _value(api, "rectrack_dead_letter_topic_messages_total") >= 1
    assert any(n == "rectrack_topic_replication_factor" for n, _ in api)
    # Every component's process metrics.
    for samples in (api, decider, projector):
        assert _value(samples, "process_resident_memory_bytes") > 0
        assert _value(samples, "process_cpu_seconds_total") > 0
    # The API's metrics port serves the same, with no token.
    port = settings.metrics_port
    alone = _samples(_get(f"http://127.0.0.1:{port}/metrics").text)
    assert _value(alone, "rectrack_projection_lag", projection="recommendations") == 0


def test_metrics_are_refused_without_the_token(
    instance: Instance,
) -> None:
    settings, _, _ = instance
    for component in ("api", "decider", "projector"):
        url = f"{_url(settings, component)}/metrics"
        assert _get(url).status_code == 401, component
        assert _get(url, {"Authorization": "Bearer wrong"}).status_code == 401, component
        assert _get(url, AUTH).status_code == 200, component


def test_readiness_follows_postgresql_and_liveness_stays(
    instance: Instance,
) -> None:
    settings, _, _ = instance
    for component in ("api", "decider", "projector"):
        assert _ready(settings, component), component
    assert LocalPostgres(settings).stop(), "PostgreSQL was not running"
    try:
        for component in ("api", "projector"):
            _wait(lambda c=component: not _ready(settings, c), 20)
            ready = _get(f"{_url(settings, component)}/health/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["postgres"]["ok"] is False
            assert ready.json()["checks"]["kafka"]["ok"] is True
            assert _get(f"{_url(settings, component)}/health/live").status_code == 200
        # The decider needs no database.
        assert _ready(settings, "decider")
    finally:
        LocalPostgres(settings).start()
    for component in ("api", "projector"):
        _wait(lambda c=component: _ready(settings, c), 60)


def test_a_killed_component_is_restarted(instance: Instance) -> None:
    settings, log_path, env = instance
    state_path = settings.run_dir / SUPERVISOR_STATE

    def decider() -> dict[str, Any]:
        state: dict[str, Any] = json.loads(state_path.read_text())["components"]["decider"]
        return state

    pid = decider()["pid"]
    assert isinstance(pid, int) and pid_alive(pid)
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: decider()["restarts"] == 1 and decider()["pid"] not in (None, pid), 30)
    assert decider()["last_exit_code"] == -signal.SIGKILL
    # It comes back ready; the API and the projector never stopped.
    _wait(lambda: _ready(settings, "decider"), 90)
    assert _ready(settings, "api") and _ready(settings, "projector")
    exits = [
        record
        for line in log_path.read_text().splitlines()
        if line.startswith("{") and (record := json.loads(line)).get("event") == "component_exited"
    ]
    assert [(r["exit_code"], r["restart_in"]) for r in exits] == [(-signal.SIGKILL, 1.0)]
    status = rectrack(env, "status", timeout=120).stdout
    assert "restarted" in status, status  # "restarted 1 times", maybe wrapped
    assert "ready (partitions 0,1,2,3)" in status, status
