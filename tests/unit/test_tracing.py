"""Tracing (infra/tracing.py) with an in-memory exporter: trace context through Kafka headers,
hostile headers ignored, the decider's and the projector's spans, statements, logs, the HTTP
span; and off, nothing at all."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState

from events.topics import Message
from infra import tracing
from infra.logs import configure_logging
from infra.settings import Settings
from infra.tracing import (
    TRACING,
    consuming_batch,
    context_from_headers,
    new_provider,
    record_statement,
    send_span,
    wanted,
)
from services.web.app import create_app
from tests.builders import publish
from tests.fakes import InMemoryLog
from tests.unit.test_decider import PARTITIONS, TOPICS, CommandsTopic, make_decider

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, every finished span kept in memory; off again after."""
    exporter = InMemorySpanExporter()
    provider = new_provider("test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    TRACING.use(provider)
    try:
        yield exporter
    finally:
        TRACING.off()
        provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def traceparent(headers: Any) -> tuple[int, int]:
    """(trace id, parent span id) of a record's traceparent header."""
    (value,) = [v for k, v in headers if k == "traceparent"]
    _, trace_id, span_id, _ = value.decode().split("-")
    return int(trace_id, 16), int(span_id, 16)


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


# --- on or off --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
        (ENDPOINT, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_traces_are_wanted_only_with_an_endpoint_and_not_disabled(
    environ: dict[str, str], on: bool
) -> None:
    assert wanted(environ) is on


_PROBE = """
import sys
from infra.tracing import TRACING, configure_tracing
import services.decider.decider, projections.worker, services.web.app, infra.logs
on = configure_tracing("decider")
attributes = dict(TRACING.provider.resource.attributes) if on else {}
print(on, "opentelemetry.sdk" in sys.modules, attributes.get("service.name"),
      attributes.get("service.namespace"), sep=",")
"""


def _probe(**environ: str) -> list[str]:
    """configure_tracing in a fresh process: whether on, whether the SDK was loaded, the
    service name and namespace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**env, **environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1].split(",")


def test_without_an_endpoint_tracing_is_off_and_the_sdk_never_loaded() -> None:
    assert _probe() == ["False", "False", "None", "None"]


def test_with_an_endpoint_each_component_is_its_own_service() -> None:
    probe = _probe(
        **ENDPOINT,
        OTEL_SERVICE_NAME="one-name-for-all",  # the supervisor gives all three one environment
        OTEL_RESOURCE_ATTRIBUTES="service.namespace=rectrack-prod",
    )
    assert probe == ["True", "True", "decider", "rectrack-prod"]


def test_an_exporter_we_do_not_ship_leaves_tracing_off_not_the_component() -> None:
    assert _probe(**ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")[:2] == ["False", "False"]


# --- headers ----------------------------------------------------------------------------


def test_a_span_s_context_goes_into_record_headers_and_comes_back(
    spans: InMemorySpanExporter,
) -> None:
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value")]),
    )
    span, headers = send_span("commands", key=b"insp-1", parent=remote)
    span.end()
    assert dict(headers)["tracestate"] == b"vendor=value"
    context = context_from_headers(headers)
    assert context is not None
    carried = trace.get_current_span(context).get_span_context()
    assert (carried.trace_id, carried.span_id) == (remote.trace_id, span.get_span_context().span_id)
    assert carried.trace_state.get("vendor") == "value"
    (sent,) = spans.get_finished_spans()
    assert sent.kind is SpanKind.PRODUCER and parent_id(sent) == remote.span_id
    assert sent.attributes is not None
    assert sent.attributes["messaging.destination.name"] == "commands"
    assert sent.attributes["messaging.kafka.message.key"] == "insp-1"
    # A mapping of headers is read like a list of pairs.
    assert context_from_headers(dict(headers)) is not None


VALID = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
HOSTILE: list[Any] = [
    None,
    (),
    [("traceparent", None)],
    [("traceparent", b"")],
    [("traceparent", b"\xff\xfe\x00garbage")],
    [("traceparent", b"00-zz")],
    [("traceparent", b"ff" + VALID[2:])],  # version ff is forbidden
    [("traceparent", b"00-" + b"0" * 32 + VALID[35:])],  # an all-zero trace id
    [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-" + b"0" * 16 + b"-01")],
    [("traceparent", VALID + b"-" + b"x" * 100_000)],  # far past any real header's size
    [("TRACEPARENT", VALID.upper())],  # Kafka header names are exact; upper hex is invalid
    [(b"traceparent", VALID)],  # a name that is bytes, not text
    [("traceparent", 42)],
    [("traceparent",)],  # not a pair
    [None],
    42,
    {"traceparent": None},
    [("tracestate", b"a=b"), ("baggage", b"\xff" * 9000)],  # state but no parent
]


@pytest.mark.parametrize("headers", HOSTILE)
def test_missing_or_malformed_trace_headers_are_ignored(
    spans: InMemorySpanExporter, headers: Any
) -> None:
    assert context_from_headers(headers) is None


def test_a_valid_traceparent_beside_junk_is_still_read(spans: InMemorySpanExporter) -> None:
    context = context_from_headers(
        [("x-junk", b"\xff"), ("traceparent", VALID), ("tracestate", b"\x00" * 600)]
    )
    assert context is not None
    carried = trace.get_current_span(context).get_span_context()
    assert carried.trace_id == 0x0AF7651916CD43DD8448EB211C80319C


# --- the decider ------------------------------------------------------------------------


async def test_the_decider_continues_each_command_s_trace_into_its_event(
    spans: InMemorySpanExporter,
) -> None:
    log = InMemoryLog(PARTITIONS)
    decider = make_decider(log)
    topic = CommandsTopic()
    gateway_span, headers = send_span(TOPICS.commands)  # what the gateway sends
    gateway_span.end()
    traced = replace(topic.message(decider, publish()), headers=headers)
    bare = topic.message(decider, publish())  # another team's producer: no headers
    hostile = replace(
        topic.message(decider, publish()),
        headers=[("traceparent", b"00-zz"), ("tracestate", b"\xff" * 10_000), ("x", None)],
    )
    outcomes = await decider.handle([traced, bare, hostile])
    assert [o.status for o in outcomes] == ["accepted"] * 3
    await asyncio.sleep(0)  # the producer spans end in the acknowledgements' callbacks

    (batch,) = [s for s in named(spans, f"process {TOPICS.commands}") if s.parent is None]
    assert batch.attributes is not None and batch.attributes["messaging.batch.message_count"] == 3
    assert [link.context.span_id for link in batch.links] == [
        gateway_span.get_span_context().span_id
    ]
    per_command = {
        s.attributes["messaging.kafka.offset"]: s
        for s in named(spans, f"process {TOPICS.commands}")
        if s is not batch and s.attributes is not None
    }
    assert set(per_command) == {traced.offset, bare.offset, hostile.offset}
    followed = per_command[traced.offset]
    assert followed.context.trace_id == gateway_span.get_span_context().trace_id
    assert parent_id(followed) == gateway_span.get_span_context().span_id
    assert [link.context.span_id for link in followed.links] == [batch.context.span_id]
    assert followed.attributes is not None
    assert followed.attributes["rectrack.outcome"] == "accepted"
    assert followed.attributes["rectrack.command_id"] == str(outcomes[0].command_id)
    for untraced in (bare, hostile):  # under the batch, in the batch's trace
        assert parent_id(per_command[untraced.offset]) == batch.context.span_id

    # Each event's record carries the trace of its command, through a producer span.
    sends = {s.context.span_id: s for s in named(spans, f"send {TOPICS.events}")}
    assert len(sends) == 3
    for record in log.topic(TOPICS.events):
        trace_id, send_id = traceparent(record.headers)
        send = sends[send_id]
        command_span = next(s for s in per_command.values() if s.context.span_id == parent_id(send))
        assert trace_id == command_span.context.trace_id
    trace_ids = [traceparent(r.headers)[0] for r in log.topic(TOPICS.events)]
    assert trace_ids.count(gateway_span.get_span_context().trace_id) == 1
    assert trace_ids.count(batch.context.trace_id) == 2  # the untraced commands' events


async def test_off_the_decider_reads_no_header_and_writes_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_run(_headers: object) -> None:
        raise AssertionError("headers parsed while tracing is off")

    monkeypatch.setattr(tracing, "context_from_headers", must_not_run)
    assert not TRACING.on
    log = InMemoryLog(PARTITIONS)
    decider = make_decider(log)
    topic = CommandsTopic()
    message = replace(topic.message(decider, publish()), headers=[("traceparent", VALID)])
    (outcome,) = await decider.handle([message])
    assert outcome.status == "accepted"
    assert [r.headers for r in log.topic(TOPICS.events)] == [()]


# --- the projector ----------------------------------------------------------------------


def _events(*headers: Any) -> list[Message]:
    return [Message(0, i, None, b"{}", h) for i, h in enumerate(headers)]


def test_a_projector_batch_continues_the_first_traced_event_s_trace(
    spans: InMemorySpanExporter,
) -> None:
    first, first_headers = send_span("events")
    second, second_headers = send_span("events")
    first.end()
    second.end()
    messages = _events((), first_headers, [("traceparent", b"junk")], second_headers)
    with consuming_batch("events", messages, continue_first_trace=True):
        record_statement(
            SimpleNamespace(
                query="SELECT pg_advisory_xact_lock_shared(hashtext($1))",
                args=("recommendations",),
                elapsed=0.002,
                exception=None,
                conn_addr=("127.0.0.1", 5432),
                conn_params=SimpleNamespace(database="rectrack"),
            )
        )
    (batch,) = [
        s
        for s in named(spans, "process events")
        if s.attributes and "messaging.batch.message_count" in s.attributes
    ]
    assert batch.context.trace_id == first.get_span_context().trace_id
    assert parent_id(batch) == first.get_span_context().span_id
    assert {link.context.span_id for link in batch.links} == {
        first.get_span_context().span_id,
        second.get_span_context().span_id,
    }
    # The second traced event's own trace reaches the projector too, linked to the batch.
    (single,) = [s for s in named(spans, "process events") if s is not batch]
    assert single.context.trace_id == second.get_span_context().trace_id
    assert parent_id(single) == second.get_span_context().span_id
    assert [link.context.span_id for link in single.links] == [batch.context.span_id]
    # The statement is the batch's child, its text kept and its arguments not.
    (statement,) = named(spans, "SELECT")
    assert statement.kind is SpanKind.CLIENT and parent_id(statement) == batch.context.span_id
    assert statement.attributes is not None
    assert statement.attributes["db.system.name"] == "postgresql"
    assert statement.attributes["db.namespace"] == "rectrack"
    assert "recommendations" not in json.dumps(dict(statement.attributes))
    assert statement.end_time is not None and statement.start_time is not None
    assert statement.end_time - statement.start_time == pytest.approx(2_000_000, rel=0.01)


def test_a_statement_outside_any_span_makes_no_trace(spans: InMemorySpanExporter) -> None:
    record_statement(
        SimpleNamespace(
            query="SELECT 1",
            elapsed=0.001,
            exception=None,
            conn_addr="/tmp/.s.PGSQL",
            conn_params=None,
        )
    )
    assert spans.get_finished_spans() == ()


def test_a_batch_of_untraced_events_is_a_trace_of_its_own(spans: InMemorySpanExporter) -> None:
    with consuming_batch(
        "events", _events((), [("traceparent", b"00-zz")]), continue_first_trace=True
    ):
        pass
    (batch,) = spans.get_finished_spans()
    assert batch.parent is None and batch.links == ()


# --- logs and HTTP ----------------------------------------------------------------------


def test_log_lines_inside_a_span_carry_its_trace_and_span_ids(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("info", "json")
    log = structlog.get_logger("test")
    with TRACING.tracer.start_as_current_span("work") as span:
        log.info("inside")
    log.info("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in outside


async def test_the_http_span_continues_the_caller_s_trace_and_hides_query_values(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    app = create_app(Settings.from_env({"RECTRACK_HOME": str(tmp_path)}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answered = await client.get(
            "/health/live", params={"token": "hunter2"}, headers={"traceparent": VALID.decode()}
        )
    assert answered.status_code == 200
    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.name == "GET /health/live"
    assert server.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert parent_id(server) == 0xB7AD6B7169203331
    assert server.attributes is not None and server.attributes["url.query"] == "token=***"
    assert "hunter2" not in json.dumps(
        [dict(s.attributes or {}) for s in spans.get_finished_spans()]
    )
