"""Hostile Kafka record headers against the tracing that reads them (infra/tracing.py).

Team systems write commands straight onto the commands topic with whatever headers they like,
and the decider reads them when tracing is on. No header list, however made, may raise or take
a command out of its batch: the record is then traced under its batch alone.
"""

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from events.topics import Message
from infra.tracing import (
    MAX_HEADER_BYTES,
    TRACING,
    consuming_batch,
    consuming_message,
    context_from_headers,
    new_provider,
)

TOPIC = "rectrack.commands"
VALID = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

# Names the propagators look for, beside any text at all.
names = st.sampled_from(["traceparent", "tracestate", "baggage", "TRACEPARENT", ""]) | st.text()
# Values: near-misses of a W3C traceparent, any bytes, nothing, oversized, non-ASCII.
values = st.one_of(
    st.none(),
    st.binary(max_size=300),
    st.sampled_from(
        [
            VALID,
            VALID.replace(b"00-", b"ff-", 1),  # the forbidden version
            VALID.replace(b"-01", b"-zz"),
            b"00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
            VALID + b"-extra",
            VALID.decode().upper().encode(),
            "00-é".encode(),
            b"\x00" * 55,
            b"=" * (MAX_HEADER_BYTES + 1),
            b",".join([b"k=v"] * 100),
        ]
    ),
)
header_lists = st.lists(st.tuples(names, values), max_size=8)


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = new_provider("security-test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    TRACING.use(provider)
    try:
        yield exporter
    finally:
        TRACING.off()
        provider.shutdown()


@settings(max_examples=300, deadline=None)
@given(header_lists)
def test_no_header_list_raises_and_only_a_valid_context_is_taken(
    headers: list[tuple[str, bytes | None]],
) -> None:
    context = context_from_headers(headers)
    if not any(name == "traceparent" for name, _ in headers):
        assert context is None


@settings(max_examples=150, deadline=None)
@given(st.lists(header_lists, min_size=1, max_size=5))
def test_a_batch_of_hostile_headers_is_traced_message_by_message(
    spans: InMemorySpanExporter, batch_headers: list[list[tuple[str, bytes | None]]]
) -> None:
    spans.clear()
    messages = [
        Message(0, offset, None, b"{}", tuple(headers))
        for offset, headers in enumerate(batch_headers)
    ]
    with consuming_batch(TOPIC, messages):
        for message in messages:
            with consuming_message(TOPIC, message) as span:
                assert span.get_span_context().is_valid
    # One span for the batch and one for each of its messages, whatever their headers said.
    assert len(spans.get_finished_spans()) == 1 + len(messages)


def test_headers_that_are_not_a_list_of_pairs_read_as_none() -> None:
    for odd in ([("traceparent",)], [b"traceparent"], [(1, VALID)], [("traceparent", 7)]):
        assert context_from_headers(odd) is None  # type: ignore[arg-type]
