"""Writes: a command in, its outcome out (201 accepted, 403/409 rejected, 202 still pending)."""

from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema

from events.outcome import Outcome
from services.decider.gateway import CommandGateway
from services.domain.commands import (
    COMMAND_TYPES,
    MAX_COMMAND_BYTES,
    Command,
    InvalidCommand,
    parse_command,
)
from services.domain.idempotency import principal_of
from services.domain.permissions import refusal
from services.domain.rejections import Reason
from services.web.access import bind_commands
from services.web.auth import ReaderActor, WriterActor

DEFAULT_WAIT_SECONDS = 5.0
# How long a command may wait for the log's acknowledgement before the API answers 503 (no
# partition leader, fewer replicas in sync than min.insync.replicas): nothing acknowledged.
ACK_TIMEOUT_SECONDS = 10.0
router = APIRouter(tags=["commands"])


def outcome_status(outcome: Outcome) -> int:
    """The HTTP status of an outcome: 201 accepted, 403 forbidden, 409 any other rejection."""
    if outcome.status == "accepted":
        return 201
    return 403 if outcome.reason == "forbidden" else 409


def _outcome_response(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.model_dump(mode="json"), status_code=outcome_status(outcome))


def forbidden_body(command: Command, detail: str) -> dict[str, Any]:
    """A 403's body in the shape of a rejected outcome; nothing was produced, so no outcome
    exists."""
    return {
        "command_id": str(command.command_id),
        "status": "rejected",
        "command_type": command.type,
        "stream_id": command.stream_id,
        "reason": Reason.FORBIDDEN.value,
        "detail": detail,
    }


def _forbidden(command: Command, detail: str) -> JSONResponse:
    return JSONResponse(forbidden_body(command, detail), status_code=403)


# OpenAPI links: what a client (or a stateful fuzzer) may ask next with what an outcome names.
_TO_OUTCOME = {
    "operationId": "get_command_commands__command_id__get",
    "parameters": {"command_id": "$response.body#/command_id"},
}
OUTCOME_LINKS: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Accepted: the event is in the log.",
        "links": {
            "GetCommandOutcome": _TO_OUTCOME,
            "GetInspection": {
                "operationId": "get_inspection_inspections__inspection_id__get",
                "parameters": {"inspection_id": "$response.body#/stream_id"},
            },
            "GetRecommendationHistory": {
                "operationId": "get_history_recommendations__recommendation_id__history_get",
                "parameters": {"recommendation_id": "$response.body#/stream_id"},
            },
        },
    },
    202: {
        "description": "Sent, no outcome yet: poll status_url.",
        "links": {"GetCommandOutcome": _TO_OUTCOME},
    },
}


def command_body_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The documented body of `POST /commands`, and the component schemas it refers to.

    The route reads the raw body (bounded, and refused naming each bad field), so FastAPI cannot
    document it from a parameter: this says what it accepts, one variant per command type.
    Over HTTP the actor comes from the token, so the body has no `actor` or `loaded_by`.
    """
    _, top = models_json_schema(
        [(model, "validation") for model in COMMAND_TYPES.values()],
        ref_template="#/components/schemas/{model}",
    )
    variants = [
        {
            "type": "object",
            "title": name,
            "required": ["type", "data"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": name},
                "data": {"$ref": f"#/components/schemas/{model.__name__}"},
                "command_id": {"type": "string", "format": "uuid"},
                "correlation_id": {"type": "string", "format": "uuid"},
                "effective_date": {"type": "string", "format": "date"},
                "expected_version": {"type": "integer", "minimum": 0},
            },
        }
        for name, model in COMMAND_TYPES.items()
    ]
    return {"oneOf": variants}, dict(top.get("$defs", {}))


def document_command_body(document: dict[str, Any]) -> dict[str, Any]:
    """Add the command body and its schemas to an OpenAPI document built by FastAPI."""
    body, components = command_body_schema()
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in components.items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two schemas named {name} in the API's contract")
    document["paths"]["/commands"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": body}},
    }
    return document


@router.post("/commands", status_code=201, responses=OUTCOME_LINKS)
async def post_command(
    request: Request,
    actor: WriterActor,
    wait: float = Query(DEFAULT_WAIT_SECONDS, ge=0, le=30),
) -> JSONResponse:
    """Send a command as the token's holder; wait up to `wait` seconds for its outcome."""
    # BodyLimit (services/web/limits.py) has refused a larger body before it was read whole.
    raw = await request.body()
    if len(raw) > MAX_COMMAND_BYTES:
        raise HTTPException(413, f"command larger than {MAX_COMMAND_BYTES} bytes")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(422, [{"field": "(body)", "reason": f"not JSON: {exc}"}]) from exc
    given = [f for f in ("actor", "loaded_by") if isinstance(doc, dict) and f in doc]
    if given:
        reason = "over HTTP the actor comes from the bearer token; leave it out"
        raise HTTPException(422, [{"field": f, "reason": reason} for f in given])
    try:
        command = parse_command({**doc, "actor": actor} if isinstance(doc, dict) else doc)
    except InvalidCommand as exc:
        raise HTTPException(422, exc.errors) from exc
    # A command this role can never send is refused here, so it never reaches the log of
    # commands (the decider checks the same table for commands sent straight to Kafka).
    denied = refusal(actor.role, command.type)
    if denied is not None:
        return _forbidden(command, denied)
    gateway: CommandGateway = request.app.state.gateway
    bind_commands([command])
    outcomes = await gateway.submit([command], timeout=wait, ack_timeout=ACK_TIMEOUT_SECONDS)
    outcome = outcomes.get(command.command_id)
    if outcome is None:
        return _pending(command.command_id)
    return _outcome_response(outcome)


def pending_body(command_id: UUID) -> dict[str, Any]:
    """A 202's body: sent, no outcome yet; poll `status_url`."""
    return {
        "command_id": str(command_id),
        "status": "pending",
        "status_url": f"/commands/{command_id}",
    }


def _pending(command_id: UUID) -> JSONResponse:
    return JSONResponse(pending_body(command_id), status_code=202)


@router.get("/commands/{command_id}", responses={202: {"description": "Sent, no outcome yet."}})
async def get_command(request: Request, command_id: UUID, reader: ReaderActor) -> JSONResponse:
    """The outcome of the caller's own command with this id, if this API process knows it;
    202 while a command the caller sent through this process has none yet.

    Only the sender's: a command id can carry other senders' outcomes too (a refused reuse, or
    the real command someone else reused the id of), and none of those answers this caller.
    """
    gateway: CommandGateway = request.app.state.gateway
    principal = principal_of(reader) if reader else None
    outcome = gateway.outcomes.of_sender(command_id, principal) if principal else None
    if outcome is not None:
        return JSONResponse(outcome.model_dump(mode="json"))
    if principal is not None and gateway.sent_by(command_id, principal):
        return _pending(command_id)
    raise HTTPException(404, f"no outcome known for your command {command_id}")
