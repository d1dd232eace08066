"""Writes: a command in, its outcome out (201 accepted, 403/409 rejected, 202 still pending)."""

from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from events.outcome import Outcome
from services.decider.gateway import CommandGateway
from services.domain.commands import MAX_COMMAND_BYTES, Command, InvalidCommand, parse_command
from services.domain.idempotency import principal_of
from services.domain.permissions import refusal
from services.domain.rejections import Reason
from services.web.auth import ReaderActor, WriterActor

DEFAULT_WAIT_SECONDS = 5.0
router = APIRouter(tags=["commands"])


def _outcome_response(outcome: Outcome) -> JSONResponse:
    body = outcome.model_dump(mode="json")
    if outcome.status == "accepted":
        return JSONResponse(body, status_code=201)
    return JSONResponse(body, status_code=403 if outcome.reason == "forbidden" else 409)


def _forbidden(command: Command, detail: str) -> JSONResponse:
    """403 in the shape of a rejected outcome; nothing was produced, so no outcome exists."""
    return JSONResponse(
        {
            "command_id": str(command.command_id),
            "status": "rejected",
            "command_type": command.type,
            "stream_id": command.stream_id,
            "reason": Reason.FORBIDDEN.value,
            "detail": detail,
        },
        status_code=403,
    )


@router.post("/commands", status_code=201)
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
    outcomes = await gateway.submit([command], timeout=wait)
    outcome = outcomes.get(command.command_id)
    if outcome is None:
        return JSONResponse(
            {
                "command_id": str(command.command_id),
                "status": "pending",
                "status_url": f"/commands/{command.command_id}",
            },
            status_code=202,
        )
    return _outcome_response(outcome)


@router.get("/commands/{command_id}")
async def get_command(request: Request, command_id: UUID, reader: ReaderActor) -> dict[str, Any]:
    """The outcome of the caller's own command with this id, if this API process knows it.

    Only the sender's: a command id can carry other senders' outcomes too (a refused reuse, or
    the real command someone else reused the id of), and none of those answers this caller.
    """
    gateway: CommandGateway = request.app.state.gateway
    outcome = gateway.outcomes.of_sender(command_id, principal_of(reader)) if reader else None
    if outcome is None:
        raise HTTPException(404, f"no outcome known for your command {command_id}")
    result: dict[str, Any] = outcome.model_dump(mode="json")
    return result
