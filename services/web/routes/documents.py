"""Evidence documents over HTTP: uploaded with their evidence, downloaded by hash, by role.

- `POST /recommendations/{recommendation_id}/evidence`: multipart/form-data with one or more
  files under `documents` and the evidence's fields; the documents are checked and stored, then
  `SubmitEvidence` is sent as the token's holder; answered as `POST /commands` answers, plus
  each document's name, size, media type, SHA-256 and download path.
- `GET /documents/{sha256}`: the document, as an attachment, to those who may read evidence
  that cites it (services/domain/permissions.py `may_read_evidence`); 404 when no projected
  evidence event cites it.
"""

import asyncio
import re
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from events.documents import LABELS, MEDIA_TYPES
from events.envelope import Actor
from events.types import LONG_TEXT_MAX, SHORT_TEXT_MAX
from infra.documents.store import sha256_of
from projections.recommendations import queries
from services.domain.permissions import may_read_evidence, refusal
from services.domain.rejections import Reason
from services.web.attachments import content_disposition
from services.web.auth import Credentials, WriterActor, session_of, token_actor
from services.web.evidence import (
    DOCUMENTS_FIELD,
    MAX_EVIDENCE_DOCUMENTS,
    EvidenceForbidden,
    EvidenceRefused,
    document_store,
    read_evidence_form,
    submit_evidence_form,
)
from services.web.routes.commands import (
    DEFAULT_WAIT_SECONDS,
    forbidden_body,
    outcome_status,
    pending_body,
)
from services.web.uploads import UploadRefused

log = structlog.get_logger(__name__)
router = APIRouter(tags=["documents"])

EVIDENCE_PATH = "/recommendations/{recommendation_id:path}/evidence"
# The paths of that route, for the body limit that follows the document limit (app.py).
EVIDENCE_PATHS = re.compile(r"^/recommendations/.+/evidence$")
SHA256_PATTERN = "^[0-9a-f]{64}$"

_TEXT = {"type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}
EVIDENCE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["evidence_id", "summary", DOCUMENTS_FIELD],
    "properties": {
        DOCUMENTS_FIELD: {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_EVIDENCE_DOCUMENTS,
            "items": {"type": "string", "format": "binary"},
            "description": (
                "The documents, each at most RECTRACK_MAX_DOCUMENT_BYTES (25 MiB by default) and "
                "one of "
                + ", ".join(LABELS[t] for t in MEDIA_TYPES)
                + ": its name's extension, its Content-Type (or application/octet-stream) and "
                "its bytes must agree."
            ),
        },
        "evidence_id": {**_TEXT, "minLength": 1, "maxLength": SHORT_TEXT_MAX},
        "summary": {"type": "string", "minLength": 1, "maxLength": LONG_TEXT_MAX},
        "source": {**_TEXT, "maxLength": SHORT_TEXT_MAX},
        "command_id": {"type": "string", "format": "uuid"},
        "correlation_id": {"type": "string", "format": "uuid"},
        "effective_date": {"type": "string", "format": "date"},
        "expected_version": {"type": "integer", "minimum": 0},
    },
}
_ERRORS = {"description": "Refused, naming each field (and file) at fault; nothing stored."}
EVIDENCE_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "Accepted: the documents are stored and the event is in the log."},
    202: {"description": "Stored and sent, no outcome yet: poll status_url."},
    403: {"description": "The role can never submit evidence, or not for this recommendation."},
    409: {"description": "Rejected by the decider (for example evidence_id_taken)."},
    413: {"description": "A document larger than RECTRACK_MAX_DOCUMENT_BYTES, or the body."},
    415: {"description": "A document of a type not allowed, or whose bytes are not its type."},
    422: _ERRORS,
}
DOCUMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The document, as an attachment, with the media type it was cited with.",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA_TYPES},
    },
    401: {"description": "No valid token (a document is never public)."},
    403: {"description": "Not the owning team's, an inspector's or an admin's."},
    404: {"description": "No evidence event cites a document with this hash."},
}


def _refused(status: int, errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=status)


@router.post(
    EVIDENCE_PATH,
    status_code=201,
    responses=EVIDENCE_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": EVIDENCE_FORM_SCHEMA}},
        }
    },
)
async def post_evidence(
    request: Request,
    recommendation_id: str,
    actor: WriterActor,
    wait: float = Query(DEFAULT_WAIT_SECONDS, ge=0, le=30),
) -> JSONResponse:
    """Upload evidence with its documents, as the token's holder; wait up to `wait` seconds
    for the outcome."""
    denied = refusal(actor.role, "SubmitEvidence")
    if denied is not None:  # answered before a byte of the body is read
        body = {
            "status": "rejected",
            "command_type": "SubmitEvidence",
            "stream_id": recommendation_id,
            "reason": Reason.FORBIDDEN.value,
            "detail": denied,
        }
        return JSONResponse(body, status_code=403)
    try:
        async with await read_evidence_form(request, request.app.state.settings) as form:
            result = await submit_evidence_form(request, form, actor, recommendation_id, wait=wait)
    except (UploadRefused, EvidenceRefused) as exc:
        log.info("evidence_refused", status=exc.status, errors=exc.errors)
        return _refused(exc.status, exc.errors)
    except EvidenceForbidden as exc:  # pragma: no cover - refused above already
        return JSONResponse(forbidden_body(exc.command, exc.detail), status_code=403)
    answer: dict[str, Any] = {"documents": result.documents_json()}
    if result.outcome is None:
        answer.update(pending_body(result.command.command_id))
        return JSONResponse(answer, status_code=202)
    answer.update(result.outcome.model_dump(mode="json"))
    return JSONResponse(answer, status_code=outcome_status(result.outcome))


async def require_document_reader(request: Request, credentials: Credentials) -> Actor:
    """Documents always need someone signed in (the bearer header, or a browser session), even
    when RECTRACK_PUBLIC_READS opens the other reads."""
    actor = await token_actor(request, credentials.credentials) if credentials else None
    if actor is None and (session := await session_of(request)) is not None:
        actor = session.actor
    if actor is None:
        raise HTTPException(
            401, "a valid bearer token is needed", headers={"WWW-Authenticate": "Bearer"}
        )
    return actor


DocumentReader = Annotated[Actor, Depends(require_document_reader)]


@router.get("/documents/{sha256}", response_class=Response, responses=DOCUMENT_RESPONSES)
async def get_document(
    request: Request,
    sha256: Annotated[str, Path(pattern=SHA256_PATTERN, description="64 lower-case hex digits")],
    reader: DocumentReader,
) -> Response:
    """An evidence document, for the inspectorate, admins, the team that owns a recommendation
    whose evidence cites it and the team that submitted that evidence."""
    async with request.app.state.pool.acquire() as conn:
        cited = await queries.citations(conn, sha256)
    if not cited:
        raise HTTPException(404, f"no evidence cites a document {sha256}")
    readable = [
        c
        for c in cited
        if may_read_evidence(
            reader.role,
            reader.team,
            owner_team=c.owner_team,
            submitted_by_team=c.submitted_by_team,
        )
    ]
    if not readable:
        first = cited[0]
        raise HTTPException(
            403,
            f"the documents of {first.recommendation_id}'s evidence are for its owning team "
            f"({first.owner_team or 'none'}), the team that submitted it, inspectors and admins",
        )
    stored = await document_store(request).get(sha256)
    if stored is None:
        log.error("document_missing", sha256=sha256)
        raise HTTPException(404, f"document {sha256} is cited but not stored; see rectrack verify")
    if await asyncio.to_thread(sha256_of, stored.content) != sha256:
        # Never serve bytes other than the ones the event cites.
        log.error("document_altered", sha256=sha256)
        raise HTTPException(500, f"document {sha256} does not match its hash; see rectrack verify")
    citation = readable[0]
    return Response(
        stored.content,
        media_type=citation.media_type or stored.info.media_type,
        headers={
            "Content-Disposition": content_disposition(citation.name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
