"""The published contract for subscribers: JSON Schema per event type and an AsyncAPI 3 document."""

from typing import Any

from events.envelope import Envelope
from events.integrity import SEAL_FIELD
from events.outcome import Outcome
from events.registry import EVENT_TYPES, current_version
from events.seals import MAX_SEALED_HASHES
from events.topics import Topics

SEAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Seal",
    "description": (
        "Present on the first event of each decider batch on a partition, and outside what the "
        "event's hash covers. Ed25519 signature by the decider key `key_id` (the first 32 hex "
        "characters of SHA-256 of its raw public key) over the ASCII bytes "
        '"rectrack-seal-v1\\n", the number of the partition the event is on (decimal), "\\n", '
        'then `hashes` joined with "\\n": the hashes of that batch\'s events on this '
        "partition, this event's first, in log order. An event is authentic when a seal on "
        "its partition at or before it lists its hash and verifies with a trusted decider key."
    ),
    "properties": {
        "key_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "hashes": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "minItems": 1,
            "maxItems": MAX_SEALED_HASHES,
        },
        "signature": {
            "type": "string",
            "contentEncoding": "base64",
            "description": "Standard base64 (padded) of the 64-byte Ed25519 signature.",
        },
    },
    "required": ["key_id", "hashes", "signature"],
    "additionalProperties": False,
}


def event_schema(event_type: str) -> dict[str, Any]:
    """JSON Schema of one event type: the envelope with that type's data."""
    envelope = Envelope.model_json_schema()
    data = EVENT_TYPES[event_type].model_json_schema()
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    envelope["properties"]["type"] = {"const": event_type}
    envelope["properties"]["schema_version"] = {"const": current_version(event_type)}
    envelope["properties"]["data"] = data
    envelope["properties"][SEAL_FIELD] = SEAL_SCHEMA  # optional: not in "required"
    envelope["title"] = event_type
    if defs:
        envelope["$defs"] = defs
    envelope["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return envelope


def event_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event type, by name."""
    return {name: event_schema(name) for name in EVENT_TYPES}


def asyncapi_document(topics: Topics, bootstrap_servers: str) -> dict[str, Any]:
    """AsyncAPI 3.0 description of the events and outcomes topics."""
    messages = {
        name: {
            "name": name,
            "title": name,
            "summary": (EVENT_TYPES[name].__doc__ or "").strip(),
            "contentType": "application/json",
            "payload": schema,
            "bindings": {"kafka": {"key": {"type": "string", "description": "The inspection id."}}},
        }
        for name, schema in event_schemas().items()
    }
    outcome = {
        "name": "Outcome",
        "contentType": "application/json",
        "payload": Outcome.model_json_schema(),
        "summary": "The decider's answer to one command (accepted or rejected).",
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "rectrack events",
            "version": "1",
            "description": (
                "Immutable events of inspectorate recommendations, keyed by inspection id. "
                "Kept forever, never compacted. Every event carries schema_version; older "
                "versions are upcast on read by rectrack's own feed (GET /events). Events "
                "are written only by the decider, which seals each batch (the optional "
                "`seal` field): check seals with the decider's public keys to know an event "
                "is the decider's."
            ),
        },
        "servers": {"local": {"host": bootstrap_servers, "protocol": "kafka"}},
        "channels": {
            "events": {
                "address": topics.events,
                "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in messages},
            },
            "outcomes": {
                "address": topics.outcomes,
                "messages": {"Outcome": {"$ref": "#/components/messages/Outcome"}},
            },
        },
        "operations": {
            "receiveEvents": {"action": "receive", "channel": {"$ref": "#/channels/events"}},
            "receiveOutcomes": {"action": "receive", "channel": {"$ref": "#/channels/outcomes"}},
        },
        "components": {"messages": {**messages, "Outcome": outcome}},
    }
