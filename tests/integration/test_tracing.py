"""One trace from an HTTP request to the projector's SQL (issue 17, parts 2 and 8).

The API, the decider and the projector run as the processes they are in production (`rectrack
run -c …`), on the session's real broker and PostgreSQL, with topics and a schema of their own,
and OTEL_EXPORTER_OTLP_ENDPOINT pointing at a small OTLP/HTTP receiver this test runs: each
process exports its spans over real OTLP (protobuf), and the test decodes them. In-memory
exporters would see only the test's own process.

The test also sends a command straight onto the commands topic with hostile trace headers, as
another team's producer might: the decider must decide it like any other.
"""

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from events.streams import partition_key
from infra.database import create_pool, migrate
from infra.kafka_clients import ensure_topics
from infra.processes import free_port
from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from services.decider.gateway import CommandGateway
from services.domain.commands import dump_command
from tests.builders import publish
from tests.cli import api_healthy
from tests.e2e.helpers import token

pytestmark = pytest.mark.integration

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP's SpanKind numbers


@dataclass(frozen=True)
class ExportedSpan:
    """A span as a component exported it."""

    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    links: tuple[str, ...]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest."""

    spans: list[ExportedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    found.append(
                        ExportedSpan(
                            service=str(resource.get("service.name")),
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            name=s.name,
                            kind=s.kind,
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            links=tuple(link.span_id.hex() for link in s.links),
                        )
                    )
        with self.lock:
            self.spans.extend(found)

    def of_trace(self, trace_id: str) -> list[ExportedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def all(self) -> list[ExportedSpan]:
        with self.lock:
            return list(self.spans)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, int]]:
    collected = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/v1/traces":
                collected.take(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: no stderr per request
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield collected, server.server_address[1]
    server.shutdown()
    server.server_close()


Traced = tuple[Settings, dict[str, str], Path]


@pytest.fixture(scope="module")
def traced(
    settings: Settings, run_env: dict[str, str], receiver: tuple[Receiver, int]
) -> Iterator[Traced]:
    """The three components as processes of their own, exporting to the receiver."""
    run_id = uuid.uuid4().hex[:6]
    env = {
        **{k: v for k, v in run_env.items() if not k.startswith("OTEL_")},
        "RECTRACK_TOPIC_PREFIX": f"trace-{run_id}.",
        "RECTRACK_DB_SCHEMA": f"trace_{run_id}",
        "RECTRACK_API_PORT": str(free_port()),
        "RECTRACK_DECIDER_METRICS_PORT": str(free_port()),
        "RECTRACK_PROJECTOR_METRICS_PORT": str(free_port()),
        "RECTRACK_LOG_FORMAT": "json",
        "RECTRACK_LOG_LEVEL": "info",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver[1]}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s, not the default 5 s
    }
    own = Settings.from_env(env)
    asyncio.run(ensure_topics(own))
    logs = own.log_dir / f"traced-{run_id}"
    logs.mkdir(parents=True, exist_ok=True)
    processes = {}
    for component in ("decider", "projector", "api"):
        with (logs / f"{component}.log").open("ab") as out:
            processes[component] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run", "-c", component],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    try:
        deadline = time.monotonic() + 120
        while not (
            api_healthy(own.api_url) and _ready(own, "decider") and _ready(own, "projector")
        ):
            dead = {c: p.returncode for c, p in processes.items() if p.poll() is not None}
            assert not dead and time.monotonic() < deadline, (
                f"components did not start ({dead}); see {logs}"
            )
            time.sleep(0.3)
        yield own, env, logs
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()


def _ready(settings: Settings, component: str) -> bool:
    url = f"http://127.0.0.1:{settings.component_port(component)}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def _wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not in {seconds} s: {what}"
        time.sleep(0.2)


def _records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def test_one_trace_runs_from_the_http_request_to_the_projector_s_sql(
    traced: Traced, receiver: tuple[Receiver, int]
) -> None:
    own, _, logs = traced
    spans = receiver[0]
    pool = await create_pool(own)
    await migrate(pool)
    try:
        secret = await token(pool, "inspector")
    finally:
        await pool.close()
    command = publish(f"insp-trace-{uuid.uuid4().hex[:8]}")
    body = {
        "type": command.type,
        "data": command.data.model_dump(mode="json"),
        "command_id": str(command.command_id),
        "effective_date": "2024-01-10",
    }
    async with httpx.AsyncClient(base_url=own.api_url, timeout=60) as client:
        answered = await client.post(
            "/commands",
            params={"wait": 30},
            json=body,
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert answered.status_code == 201, answered.text
    await wait_until_projected(own, RECOMMENDATIONS, timeout=60)

    def request_span() -> ExportedSpan | None:
        return next(
            (
                s
                for s in spans.all()
                if s.service == "api" and s.kind == SERVER and s.name == "POST /commands"
            ),
            None,
        )

    _wait_for(lambda: request_span() is not None, 30, "the API's span of POST /commands")
    http = request_span()
    assert http is not None
    assert http.parent_id == "", "the request began the trace"
    trace_id = http.trace_id

    def statement_in_projector() -> ExportedSpan | None:
        return next(
            (
                s
                for s in spans.of_trace(trace_id)
                if s.service == "projector"
                and s.kind == CLIENT
                and s.attributes.get("db.system.name") == "postgresql"
            ),
            None,
        )

    _wait_for(
        lambda: statement_in_projector() is not None, 30, "a projector statement in the trace"
    )
    statement = statement_in_projector()
    assert statement is not None
    by_id = {s.span_id: s for s in spans.of_trace(trace_id)}
    path = [statement]
    while path[-1].parent_id:
        assert path[-1].parent_id in by_id, f"{path[-1].name}'s parent was not exported"
        path.append(by_id[path[-1].parent_id])
    assert path[-1] is http or path[-1].span_id == http.span_id

    prefix = own.topic_prefix
    hops = [(s.service, s.name, s.kind) for s in path if s.kind != CLIENT or s is statement]
    milestones = [
        ("projector", f"process {prefix}rectrack.events", CONSUMER),
        ("decider", f"send {prefix}rectrack.events", PRODUCER),
        ("decider", f"process {prefix}rectrack.commands", CONSUMER),
        ("api", f"send {prefix}rectrack.commands", PRODUCER),
        ("api", "POST /commands", SERVER),
    ]
    # In this order from the statement up to the request (FastAPI's own spans in between).
    positions = [hops.index(m) for m in milestones]
    assert positions == sorted(positions), hops
    decided = next(s for s in path if s.name == f"process {prefix}rectrack.commands")
    assert decided.attributes["rectrack.command_id"] == str(command.command_id)
    assert decided.attributes["rectrack.outcome"] == "accepted"
    batch = next(s for s in path if s.name == f"process {prefix}rectrack.events")
    assert batch.attributes["messaging.batch.message_count"] >= 1

    # The decider's line about the command names the command and leads to the trace.
    decided_lines = [
        r
        for r in _records(logs / "decider.log")
        if r.get("event") == "command_decided" and r.get("command_id") == str(command.command_id)
    ]
    assert len(decided_lines) == 1, decided_lines
    assert decided_lines[0]["correlation_id"] == str(command.command_id)
    assert decided_lines[0]["trace_id"] == trace_id
    access = [
        r
        for r in _records(logs / "api.log")
        if r.get("event") == "http_request" and r.get("path") == "/commands"
    ]
    assert [(r["command_id"], r["trace_id"]) for r in access] == [
        (str(command.command_id), trace_id)
    ]
    assert secret not in (logs / "api.log").read_text()


async def test_a_command_with_hostile_trace_headers_is_decided_like_any_other(
    traced: Traced, receiver: tuple[Receiver, int]
) -> None:
    own, _, logs = traced
    gateway = CommandGateway(own)
    await gateway.start()
    try:
        commands = [publish(f"insp-hostile-{uuid.uuid4().hex[:8]}") for _ in range(3)]
        hostile: list[list[tuple[str, bytes]]] = [
            [("traceparent", b"\xff\xfe not a trace"), ("tracestate", b"x" * 20_000)],
            [("traceparent", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01")],
            [("traceparent", b"00-zz"), ("traceparent", b""), ("baggage", b"\x00" * 9000)],
        ]
        gateway.outcomes.expect(c.command_id for c in commands)
        for c, headers in zip(commands, hostile, strict=True):
            await gateway.producer.send_and_wait(
                own.topics.commands,
                gateway.signer.sign(dump_command(c)),
                key=partition_key(c.stream_id),
                headers=headers,
            )
        outcomes = await gateway.wait_for(commands, timeout=60)
    finally:
        await gateway.stop()
    assert [outcomes[c.command_id].status for c in commands] == ["accepted"] * 3

    # Each was traced under its decider batch, in no trace of its own making.
    def decided(c: Any) -> ExportedSpan | None:
        return next(
            (
                s
                for s in receiver[0].all()
                if s.service == "decider" and s.attributes.get("rectrack.command_id") == str(c)
            ),
            None,
        )

    def batch_of(span: ExportedSpan) -> ExportedSpan | None:
        found = [s for s in receiver[0].of_trace(span.trace_id) if s.span_id == span.parent_id]
        return found[0] if found else None

    for c in commands:
        _wait_for(lambda c=c: decided(c.command_id) is not None, 30, "the decider's span")
        span = decided(c.command_id)
        assert span is not None and span.links == ()
        # The batch span ends after its commands' spans, so it may be exported later.
        _wait_for(lambda span=span: batch_of(span) is not None, 30, "its batch's span")
        batch = batch_of(span)
        assert batch is not None and batch.parent_id == ""
        assert batch.attributes["messaging.batch.message_count"] >= 1
    assert not [
        r for r in _records(logs / "decider.log") if r.get("level") in ("error", "critical")
    ]
