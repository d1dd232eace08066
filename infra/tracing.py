"""OpenTelemetry tracing: one trace from an HTTP request to the projector's SQL, or nothing.

Tracing is on in a process when an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`,
or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), unless `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none`. Then `configure_tracing` builds the SDK's provider, exporting by
OTLP over HTTP (protobuf) in batches, with every standard `OTEL_*` variable the SDK and the
exporter read (headers, timeout, compression, certificates, sampler, `OTEL_BSP_*` batching,
`OTEL_PROPAGATORS`, `OTEL_RESOURCE_ATTRIBUTES`). `service.name` is the component (api, decider,
projector, cli) whatever `OTEL_SERVICE_NAME` says: the supervisor hands one environment to all
three, and one name for three processes would hide which did what.

Off, nothing of the SDK is imported and `TRACING.on` is False: the hot paths (the decider and
the projector, per message) test that one attribute and do nothing else, no header parsing, no
span objects.

Trace context crosses Kafka as W3C `traceparent` / `tracestate` record headers. Other teams
write commands straight onto the topic, with any headers or none: a missing, malformed or
oversized header is ignored (the message is then traced under its batch alone), never raised.
"""

import asyncio
import os
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, StatusCode, Tracer

from events.topics import Message

# A record's headers as aiokafka reads them (a header's value may be null), or as a mapping.
Headers = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None]
# Headers as a producer sends them.
KafkaHeaders = list[tuple[str, bytes]]

TRACER_NAME: Final = "rectrack"
SERVICE_NAMESPACE: Final = "rectrack"
# No W3C header is longer (tracestate: 32 members of at most 256 characters; baggage: 8192
# bytes): a longer value is not a trace header, and is not handed to a parser.
MAX_HEADER_BYTES: Final = 8192
# The most statement text a span keeps: the migrations are long, and their text is in the repo.
MAX_STATEMENT_CHARS: Final = 2000
REDACTED: Final = "***"

log = structlog.get_logger(__name__)


class _Tracing:
    """This process's tracing: `on` is the one check the hot paths make."""

    def __init__(self) -> None:
        self.on = False
        self.tracer: Tracer = trace.NoOpTracer()
        self.provider: Any = None  # the SDK's TracerProvider, when on
        self.component: str | None = None

    def use(self, provider: Any, component: str | None = None) -> None:
        """Trace with this SDK provider (configure_tracing's, or a test's in-memory one)."""
        self.provider, self.component = provider, component
        self.tracer = provider.get_tracer(TRACER_NAME)
        self.on = True

    def off(self) -> None:
        """Back to no tracing: nothing recorded, nothing exported."""
        self.provider, self.tracer, self.on = None, trace.NoOpTracer(), False
        self.component = None


TRACING = _Tracing()


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint, and tracing not disabled."""
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not (endpoint or "").strip():
        return False
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "none"


def configure_tracing(component: str, environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on for this process as `component` when the environment asks for it.

    Returns whether it is on. A setting the exporter cannot use (another exporter or protocol)
    is logged and tracing stays off: telemetry never stops a component from starting. Called
    again for the same component (a command that calls another), it changes nothing.
    """
    env = os.environ if environ is None else environ
    if TRACING.on and TRACING.component == component:
        return True
    if not wanted(env):
        TRACING.off()
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if exporter != "otlp" or protocol != "http/protobuf":
        log.warning(
            "tracing_not_started",
            reason=f"only OTLP over http/protobuf is built in, not exporter {exporter!r} "
            f"with protocol {protocol!r}",
            fix="set OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
        )
        TRACING.off()
        return False
    # Imported only when on: a process that does not trace never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = new_provider(component)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    # Global too, for any library that traces through the API (set once per process; ours
    # use TRACING's provider, FastAPI is given it explicitly).
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    TRACING.use(provider, component)
    return True


def new_provider(component: str) -> Any:
    """An SDK TracerProvider naming this component, with the query-redacting processor first.

    The sampler is the SDK's from `OTEL_TRACES_SAMPLER` (parent-based, always on, by default),
    so a sampled request is traced through every component it reaches.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = (
        Resource({"service.namespace": SERVICE_NAMESPACE})
        .merge(Resource.create())  # OTEL_RESOURCE_ATTRIBUTES, the SDK's own attributes
        .merge(Resource({"service.name": component}))
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(_query_redactor())
    return provider


def _query_redactor() -> Any:
    """A span processor that keeps the names of a URL's query parameters, never their values.

    FastAPI's request span records `url.query`, and a client may put a token there. The
    access log leaves the query out altogether (services/web/access.py); a trace keeps which
    parameters a request had. (Defined here so the SDK is imported only when tracing is on.)
    """
    from opentelemetry.sdk.trace import SpanProcessor

    class QueryRedactor(SpanProcessor):
        def on_start(self, span: Any, parent_context: Context | None = None) -> None:
            query = span.attributes.get("url.query") if span.attributes else None
            if isinstance(query, str) and query:
                names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
                span.set_attribute("url.query", "&".join(f"{n}={REDACTED}" for n in names))

    return QueryRedactor()


# --- W3C trace context in Kafka record headers ---------------------------------------------


class _KafkaHeaderGetter(Getter[Headers]):
    """Header values as text for the propagators; anything odd reads as absent."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        pairs = carrier.items() if isinstance(carrier, Mapping) else carrier
        found = []
        for name, value in pairs:
            if name != key or not isinstance(value, bytes | bytearray | str):
                continue
            if len(value) > MAX_HEADER_BYTES:
                continue
            text = value if isinstance(value, str) else bytes(value).decode("ascii", "replace")
            found.append(text)
        return found or None

    def keys(self, carrier: Headers) -> list[str]:
        pairs = carrier.items() if isinstance(carrier, Mapping) else carrier
        return [name for name, _ in pairs if isinstance(name, str)]


_GETTER = _KafkaHeaderGetter()


def context_from_headers(headers: Headers | None) -> Context | None:
    """The trace context a record carries, or None (no headers, or none a parser accepts).

    Hostile input is expected here: a header list that is not one, non-ASCII bytes, a null
    value, a traceparent of the wrong shape or version all give None, never an exception.
    """
    if not headers:
        return None
    from opentelemetry import propagate  # here: loading the propagators takes ~20 ms

    try:
        extracted = propagate.extract(headers, getter=_GETTER)
    except Exception:  # a propagator's bug must not stop a worker; the record goes untraced
        return None
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


def headers_for(span: Span) -> KafkaHeaders:
    """The record headers that carry this span's context (traceparent, tracestate, …)."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return [(name, value.encode("ascii", "replace")) for name, value in carrier.items()]


def _kafka_attributes(topic: str, operation: str) -> dict[str, Any]:
    """The messaging conventions' attributes every Kafka span of ours has."""
    kind = "send" if operation == "send" else "process"
    return {
        "messaging.system": "kafka",
        "messaging.operation.name": operation,
        "messaging.operation.type": kind,
        "messaging.destination.name": topic,
    }


def send_span(
    topic: str,
    *,
    key: bytes | None = None,
    partition: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    parent: SpanContext | None = None,
) -> tuple[Span, KafkaHeaders]:
    """A producer span for one record (child of `parent`, else of the current span) and the
    headers that carry it (`send_traced` sends with them and ends the span)."""
    attrs = _kafka_attributes(topic, "send")
    if key is not None:
        attrs["messaging.kafka.message.key"] = key.decode("utf-8", "replace")
    if partition is not None:
        attrs["messaging.destination.partition.id"] = str(partition)
    if attributes:
        attrs.update(attributes)
    context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent else None
    span = TRACING.tracer.start_span(
        f"send {topic}", context=context, kind=SpanKind.PRODUCER, attributes=attrs
    )
    return span, headers_for(span)


def _end_when_acknowledged(span: Span, delivery: "asyncio.Future[Any]") -> None:
    """End a producer span when the broker acknowledges its record (or refuses it)."""

    def done(future: "asyncio.Future[Any]") -> None:
        if future.cancelled():
            span.set_status(StatusCode.ERROR, "cancelled")
        elif (exc := future.exception()) is not None:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, type(exc).__name__)
        else:
            metadata = future.result()
            offset = getattr(metadata, "offset", None)
            if isinstance(offset, int):
                span.set_attribute("messaging.kafka.offset", offset)
                span.set_attribute(
                    "messaging.destination.partition.id", str(getattr(metadata, "partition", ""))
                )
        span.end()

    delivery.add_done_callback(done)


class Producer(Protocol):
    """What `send_traced` needs of a producer: aiokafka's `send`, headers included."""

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> "asyncio.Future[Any]": ...


async def send_traced(
    producer: Producer,
    topic: str,
    value: bytes,
    *,
    key: bytes | None = None,
    partition: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    parent: SpanContext | None = None,
) -> "asyncio.Future[Any]":
    """Send a record under a producer span (a child of `parent`, else of the current span),
    the span's context in the record's headers; the span ends when the broker acknowledges
    the record. Returns the producer's delivery future, as `send` does."""
    span, headers = send_span(
        topic, key=key, partition=partition, attributes=attributes, parent=parent
    )
    try:
        sent = await producer.send(topic, value, key=key, partition=partition, headers=headers)
    except BaseException as exc:  # never sent: the span ends here, failed
        span.record_exception(exc)
        span.set_status(StatusCode.ERROR, type(exc).__name__)
        span.end()
        raise
    _end_when_acknowledged(span, sent)
    return sent


def _message_attributes(topic: str, message: Message) -> dict[str, Any]:
    attrs = _kafka_attributes(topic, "process")
    attrs["messaging.destination.partition.id"] = str(message.partition)
    attrs["messaging.kafka.offset"] = message.offset
    return attrs


@contextmanager
def consuming_batch(
    topic: str, messages: Sequence[Message], *, continue_first_trace: bool = False
) -> Iterator[Span]:
    """A span for processing a batch of records, current inside the block.

    As the messaging conventions have it, the batch span links to every record's context
    (the SDK keeps the first 128 links, `OTEL_SPAN_LINK_COUNT_LIMIT`). A link does not put
    the batch in a record's trace, so:

    - the decider (`continue_first_trace=False`) starts a trace per batch and gives each
      command a span of its own in the command's trace (`consuming_message`);
    - the projector, whose work on a batch is one bulk write that cannot be split by event,
      continues the trace of the first record that has one (`continue_first_trace=True`), so
      that request's trace runs on into the batch's SQL; every other traced record gets a
      span in its own trace, as long as the batch, linked to the batch span.
    """
    contexts = [(m, context_from_headers(m.headers)) for m in messages]
    traced = [(m, c) for m, c in contexts if c is not None]
    links = [Link(trace.get_current_span(c).get_span_context()) for _, c in traced]
    parent = traced[0][1] if continue_first_trace and traced else None
    attrs = _kafka_attributes(topic, "process")
    attrs["messaging.batch.message_count"] = len(messages)
    partitions = sorted({m.partition for m in messages})
    if len(partitions) == 1:
        attrs["messaging.destination.partition.id"] = str(partitions[0])
    started = time.time_ns()
    with TRACING.tracer.start_as_current_span(
        f"process {topic}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attrs,
        start_time=started,
    ) as batch:
        # Records of the parent's own trace (commands sent by one request) need no second span.
        first = batch.get_span_context().trace_id
        others = [
            (m, c)
            for m, c in (traced if continue_first_trace else [])
            if trace.get_current_span(c).get_span_context().trace_id != first
        ]
        singles = [
            TRACING.tracer.start_span(
                f"process {topic}",
                context=context,
                kind=SpanKind.CONSUMER,
                links=[Link(batch.get_span_context())],
                attributes=_message_attributes(topic, message),
                start_time=started,
            )
            for message, context in others
        ]
        try:
            yield batch
        except BaseException as exc:
            for single in singles:
                single.set_status(StatusCode.ERROR, type(exc).__name__)
            raise
        finally:
            ended = time.time_ns()
            for single in singles:
                single.end(end_time=ended)


@contextmanager
def consuming_message(topic: str, message: Message) -> Iterator[Span]:
    """A span for processing one record of a batch, current inside the block: in the
    record's trace, linked to the batch span, or, for a record without a usable context,
    a child of the batch span."""
    batch = trace.get_current_span()
    context = context_from_headers(message.headers)
    links = [Link(batch.get_span_context())] if context is not None else None
    with TRACING.tracer.start_as_current_span(
        f"process {topic}",
        context=context,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=_message_attributes(topic, message),
    ) as span:
        yield span


def current_span_context() -> SpanContext | None:
    """The current span's context, when there is a valid one."""
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


# --- PostgreSQL statements -----------------------------------------------------------------


def record_statement(record: Any) -> None:
    """An asyncpg query logger (`Connection.add_query_logger`): a client span per statement.

    asyncpg calls it just after each statement, in a copy of the context the statement ran
    in, so the span's parent is the span the statement belonged to. Only statements inside a
    traced operation get one: the projector's watch and the pool's housekeeping run outside
    any span and would otherwise make a trace of their own every few seconds. Never the
    statement's arguments (tokens' hashes, documents' bytes), only its text.
    """
    if not TRACING.on or not trace.get_current_span().get_span_context().is_valid:
        return
    ended = time.time_ns()
    started = ended - int(record.elapsed * 1e9)
    text = str(record.query)
    operation = text.lstrip().split(None, 1)[0].upper() if text.strip() else "QUERY"
    attrs: dict[str, Any] = {
        "db.system.name": "postgresql",
        "db.operation.name": operation,
        "db.query.text": text[:MAX_STATEMENT_CHARS],
    }
    database = getattr(record.conn_params, "database", None)
    if database:
        attrs["db.namespace"] = str(database)
    address = record.conn_addr
    if isinstance(address, tuple) and len(address) >= 2:
        attrs["server.address"], attrs["server.port"] = str(address[0]), int(address[1])
    elif isinstance(address, str):
        attrs["server.address"] = address
    span = TRACING.tracer.start_span(
        operation, kind=SpanKind.CLIENT, attributes=attrs, start_time=started
    )
    if record.exception is not None:
        span.set_attribute("error.type", type(record.exception).__name__)
        span.set_status(StatusCode.ERROR, str(record.exception)[:300])
    span.end(end_time=ended)


async def trace_statements(conn: Any) -> None:
    """A pool's `init`: every statement of this connection spanned (`record_statement`)."""
    conn.add_query_logger(record_statement)


# --- logs ----------------------------------------------------------------------------------


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: the current span's trace_id and span_id, so a log line leads to
    its trace. Off, it is one attribute test."""
    if TRACING.on:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
            event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def shutdown_tracing() -> None:
    """Export what is still buffered and stop (the SDK also does it at exit)."""
    provider = TRACING.provider
    TRACING.off()
    if provider is not None:
        provider.shutdown()


__all__ = [
    "TRACING",
    "Headers",
    "KafkaHeaders",
    "add_trace_ids",
    "configure_tracing",
    "consuming_batch",
    "consuming_message",
    "context_from_headers",
    "current_span_context",
    "headers_for",
    "new_provider",
    "record_statement",
    "send_span",
    "send_traced",
    "shutdown_tracing",
    "trace_statements",
    "wanted",
]
