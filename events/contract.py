"""The published contract for subscribers: JSON Schema per event type and an AsyncAPI 3 document."""

from typing import Any

from events.envelope import Envelope
from events.outcome import Outcome
from events.registry import EVENT_TYPES, current_version
from events.topics import Topics


def event_schema(event_type: str) -> dict[str, Any]:
    """JSON Schema of one event type: the envelope with that type's data."""
    envelope = Envelope.model_json_schema()
    data = EVENT_TYPES[event_type].model_json_schema()
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    envelope["properties"]["type"] = {"const": event_type}
    envelope["properties"]["schema_version"] = {"const": current_version(event_type)}
    envelope["properties"]["data"] = data
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
                "versions are upcast on read by rectrack's own feed (GET /events)."
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
