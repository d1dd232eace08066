"""Property-based fuzzing of command parsing: any input is a command or a named refusal."""

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.commands import (
    COMMAND_TYPES,
    InvalidCommand,
    parse_command,
    parse_command_bytes,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = [
    "inspection_id",
    "number",
    "text",
    "recommendation_id",
    "team",
    "owner_role",
    "target_date",
    "reason",
    "agreed_with_inspectorate",
    "position",
    "delivery_status",
    "delay_reason",
    "evidence_id",
    "summary",
    "documents",
    "rationale",
    "evidence_ids",
    "decision",
    "committee",
    "meeting_date",
    "title",
    "inspectorate",
    "published_on",
]
commandish = st.fixed_dictionaries(
    {
        "type": st.sampled_from([*COMMAND_TYPES, "Nope"]),
        "data": st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8),
        "actor": st.one_of(json_values, st.just({"name": "a", "team": "t", "role": "admin"})),
    },
    optional={
        "command_id": json_values,
        "effective_date": json_values,
        "expected_version": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused_with_a_field(raw: bytes) -> None:
    try:
        parse_command_bytes(raw)
    except InvalidCommand as exc:
        assert exc.errors and all(e["field"] and e["reason"] for e in exc.errors)


@settings(max_examples=400, deadline=None)
@given(commandish)
def test_any_command_shaped_document_parses_or_names_its_fields(doc: dict[str, Any]) -> None:
    try:
        command = parse_command(doc)
    except InvalidCommand as exc:
        assert exc.errors and all(e["field"] and e["reason"] for e in exc.errors)
    else:
        again = parse_command_bytes(orjson.dumps(doc))
        assert again.model_dump(exclude={"command_id"}) == command.model_dump(
            exclude={"command_id"}
        )
