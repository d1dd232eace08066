"""The browser's forms: each one command (or several) through the API's CommandGateway.

Every form is a page of its own (GET) and a POST to the same address. The POST
1. needs a live session and the session's CSRF token (else a 403 page, nothing sent);
2. checks that this person may do this here (services/web/actions.py: the decider's table and
   the owning-team rule), else a 403 page: a forged form changes nothing;
3. builds the command with the session's actor (a form never names who acts), validated as
   the API validates (`parse_command`), and sends it through the gateway;
4. redirects (POST-redirect-GET): accepted, to the page it changed, with a message the session
   shows once; refused, back to the form with the values and, beside each field, the reason
   in plain words (form_errors.py), also kept in the session until shown.
"""

import asyncio
import time
from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from events.envelope import Actor
from events.outcome import Outcome
from infra.documents.kinds import CheckedDocument, DocumentRefused, allowed_kinds, check_document
from infra.documents.store import sha256_of
from infra.settings import Settings
from projections.recommendations import queries
from projections.recommendations.handover import HandoverPack, build_handover
from projections.recommendations.history import HistoryEntry
from services.decider.gateway import CommandGateway
from services.domain.commands import Command, InvalidCommand, parse_command
from services.web import actions
from services.web.access import bind_commands
from services.web.auth import SignedIn
from services.web.evidence import MAX_EVIDENCE_DOCUMENTS, document_store, stored_documents
from services.web.form_errors import rejection_errors, validation_errors
from services.web.pages import form_state, page
from services.web.sessions import CSRF_FIELD, Session, csrf_matches, set_flash

router = APIRouter(include_in_schema=False)

# How long a form waits for the decider's outcome, and then for the read model to show it.
OUTCOME_SECONDS = 10.0
ACK_SECONDS = 10.0
PROJECTED_SECONDS = 5.0
FORGED = (
    "This form has expired or did not come from this service, so nothing was changed. "
    "Go back, reload the page and try again."
)
DELIVERY = (("on_track", "On track"), ("delayed", "Delayed"))
DELAY_REASONS = (
    ("legislation", "Legislation"),
    ("system", "Systems or technology"),
    ("resourcing", "Resourcing"),
    ("dependency", "Depends on others"),
    ("other", "Another reason"),
)
DECISIONS = (
    ("closed", "Close it: the recommendation has been met"),
    ("kept_open", "Keep it open"),
    ("more_evidence_requested", "Ask for more evidence"),
    ("superseded", "Superseded: overtaken by a later recommendation or events"),
)
KINDS = (("recommendation", "Recommendations"), ("area_for_development", "Areas for development"))
YES_NO = (("yes", "Yes"), ("no", "No"))


# -- helpers ---------------------------------------------------------------------------------


def recommendation_url(recommendation_id: str, suffix: str = "") -> str:
    """The address of a recommendation's page (or one of its forms)."""
    return f"/ui/recommendations/{quote(recommendation_id, safe='/')}{suffix}"


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _posted(request: Request, session: Session, *, max_files: int = 0) -> FormData:
    """The posted form, if it carries the session's CSRF token; else a 403 page."""
    form = await request.form(max_files=max_files, max_fields=64)
    if not csrf_matches(session.csrf_token, form.get(CSRF_FIELD)):
        await form.close()
        raise HTTPException(403, FORGED)
    return form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _date_parts(form: FormData, name: str) -> dict[str, str]:
    return {part: _text(form, f"{name}-{part}") for part in ("day", "month", "year")}


def _date(parts: dict[str, str], what: str) -> tuple[date | None, str | None]:
    """A date from the GOV.UK date input's three fields, or what is wrong with them."""
    if not any(parts.values()):
        return None, f"Enter {what}"
    missing = [p for p in ("day", "month", "year") if not parts[p]]
    if missing:
        return None, f"{what[:1].upper()}{what[1:]} must include a {' and '.join(missing)}"
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"])), None
    except ValueError:
        return None, f"{what[:1].upper()}{what[1:]} must be a real date"


async def _refused(
    request: Request,
    session: Session,
    form_name: str,
    values: dict[str, Any],
    errors: dict[str, str],
    back: str,
) -> RedirectResponse:
    """Back to the form, which shows the values and the errors once."""
    async with request.app.state.pool.acquire() as conn:
        await set_flash(conn, session, {"form": form_name, "values": values, "errors": errors})
    return _see_other(back)


async def _done(request: Request, session: Session, message: str, to: str) -> RedirectResponse:
    async with request.app.state.pool.acquire() as conn:
        await set_flash(conn, session, {"kind": "success", "message": message})
    return _see_other(to)


async def _projected(request: Request, outcomes: Sequence[Outcome]) -> None:
    """Wait (briefly) until the read model holds the accepted events, so the page the browser
    is sent to shows them."""
    ids = [event_id for o in outcomes for event_id in o.event_ids]
    if not ids:
        return
    deadline = time.monotonic() + PROJECTED_SECONDS
    async with request.app.state.pool.acquire() as conn:
        while time.monotonic() < deadline:
            found = await conn.fetchval(
                "SELECT count(*) FROM event_log WHERE event_id = ANY($1::uuid[])", ids
            )
            if found >= len(ids):
                return
            await asyncio.sleep(0.1)


def _command(kind: str, data: dict[str, Any], actor: Actor) -> Command:
    """A command with the session's actor: never one a form names."""
    return parse_command({"type": kind, "data": data, "actor": actor})


async def _submit(request: Request, commands: Sequence[Command]) -> dict[UUID, Outcome]:
    gateway: CommandGateway = request.app.state.gateway
    bind_commands(commands)
    return await gateway.submit(commands, timeout=OUTCOME_SECONDS, ack_timeout=ACK_SECONDS)


async def _send_one(
    request: Request,
    session: Session,
    *,
    kind: str,
    data: dict[str, Any],
    form_name: str,
    values: dict[str, Any],
    labels: dict[str, str],
    back: str,
    done: str,
    success: str,
    fields: dict[str, str] | None = None,
) -> RedirectResponse:
    """Validate, send, and redirect with the outcome."""
    try:
        command = _command(kind, data, session.actor)
    except InvalidCommand as exc:
        errors = validation_errors(exc.errors, labels, fields)
        return await _refused(request, session, form_name, values, errors, back)
    outcome = (await _submit(request, [command])).get(command.command_id)
    if outcome is None:
        message = "Sent. The service has not confirmed it yet: reload this page in a moment."
        async with request.app.state.pool.acquire() as conn:
            await set_flash(conn, session, {"kind": "info", "message": message})
        return _see_other(done)
    if outcome.status != "accepted":
        errors = rejection_errors(kind, outcome.reason, outcome.detail)
        return await _refused(request, session, form_name, values, errors, back)
    await _projected(request, [outcome])
    return await _done(request, session, success, done)


async def _recommendation(
    request: Request, recommendation_id: str
) -> tuple[HandoverPack, list[HistoryEntry]]:
    async with request.app.state.pool.acquire() as conn:
        entries = await queries.history(conn, recommendation_id)
    if not entries:
        raise HTTPException(404, f"There is no recommendation {recommendation_id}.")
    return build_handover(recommendation_id, entries, as_of=date.today()), entries


async def _allowed(
    request: Request, recommendation_id: str, session: Session, slug: str
) -> tuple[HandoverPack, list[HistoryEntry]]:
    """The recommendation, if this person may use this form on it; else a 403 page."""
    pack, entries = await _recommendation(request, recommendation_id)
    action = actions.BY_SLUG[slug]
    if action not in actions.available(session.actor, pack):
        raise HTTPException(
            403,
            f"{session.actor.name} ({session.actor.team}, {session.actor.role}) cannot "
            f"{action.label[:1].lower()}{action.label[1:]} on this recommendation now, so "
            "nothing was changed.",
        )
    return pack, entries


def _form_page(
    request: Request,
    template: str,
    form_name: str,
    *,
    defaults: dict[str, Any] | None = None,
    **context: Any,
) -> Response:
    values, errors = form_state(request, form_name)
    return page(
        request,
        template,
        nav="overview",
        values={**(defaults or {}), **values},
        errors=errors,
        **context,
    )


# -- contributors of the owning team (and admins) ------------------------------------------

PROGRESS_LABELS = {
    "delivery_status": "Is delivery on track",
    "delay_reason": "Why it is delayed",
    "position": "Position",
}


@router.get("/ui/recommendations/{recommendation_id:path}/progress")
async def progress_form(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    pack, _ = await _allowed(request, recommendation_id, session, "progress")
    return _form_page(
        request,
        "form_progress.html.j2",
        "progress",
        pack=pack,
        delivery=DELIVERY,
        delay_reasons=DELAY_REASONS,
    )


@router.post("/ui/recommendations/{recommendation_id:path}/progress")
async def progress(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    form = await _posted(request, session)
    await _allowed(request, recommendation_id, session, "progress")
    back = recommendation_url(recommendation_id, "/progress")
    values = {n: _text(form, n) for n in PROGRESS_LABELS}
    errors = {}
    if values["delivery_status"] not in dict(DELIVERY):
        errors["delivery_status"] = "Select whether delivery is on track or delayed"
    if values["delivery_status"] == "delayed" and values["delay_reason"] not in dict(DELAY_REASONS):
        errors["delay_reason"] = "Select why it is delayed"
    if not values["position"]:
        errors["position"] = "Enter the position: what has been done and what is next"
    if errors:
        return await _refused(request, session, "progress", values, errors, back)
    data = {
        "recommendation_id": recommendation_id,
        "position": values["position"],
        "delivery_status": values["delivery_status"],
        # On track has no delay reason, whatever was left selected.
        "delay_reason": values["delay_reason"] if values["delivery_status"] == "delayed" else None,
    }
    return await _send_one(
        request,
        session,
        kind="ReportProgress",
        data=data,
        form_name="progress",
        values=values,
        labels=PROGRESS_LABELS,
        back=back,
        done=recommendation_url(recommendation_id),
        success="Progress reported.",
    )


EVIDENCE_LABELS = {"evidence_id": "Reference", "summary": "Summary", "documents": "Files"}


def _next_evidence_id(pack: HandoverPack) -> str:
    taken = {e.evidence_id for e in pack.evidence}
    n = len(taken) + 1
    while f"E{n}" in taken:
        n += 1
    return f"E{n}"


async def _checked(upload: UploadFile, limit: int) -> CheckedDocument:
    """An uploaded file checked as the API's upload checks it (infra/documents/kinds.py); the
    form's parser has spooled it, and more than the limit is never read into memory."""
    content = await upload.read(limit + 1)
    return check_document(
        "documents", upload.filename or "", upload.content_type, content, limit=limit
    )


@router.get("/ui/recommendations/{recommendation_id:path}/evidence")
async def evidence_form(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    pack, _ = await _allowed(request, recommendation_id, session, "evidence")
    settings: Settings = request.app.state.settings
    return _form_page(
        request,
        "form_evidence.html.j2",
        "evidence",
        defaults={"evidence_id": _next_evidence_id(pack)},
        pack=pack,
        max_mb=settings.max_document_bytes // 2**20,
        max_files=MAX_EVIDENCE_DOCUMENTS,
        allowed=allowed_kinds(),
    )


@router.post("/ui/recommendations/{recommendation_id:path}/evidence")
async def evidence(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    settings: Settings = request.app.state.settings
    # More than MAX_FILES are counted and refused in words, not by the parser.
    form = await _posted(request, session, max_files=MAX_EVIDENCE_DOCUMENTS * 5)
    try:
        await _allowed(request, recommendation_id, session, "evidence")
        back = recommendation_url(recommendation_id, "/evidence")
        values = {"evidence_id": _text(form, "evidence_id"), "summary": _text(form, "summary")}
        uploads = [f for f in form.getlist("documents") if isinstance(f, UploadFile) and f.filename]
        errors = {}
        if not values["evidence_id"]:
            errors["evidence_id"] = "Enter a reference for this evidence, like E1"
        if not values["summary"]:
            errors["summary"] = "Enter a summary of what the evidence shows"
        checked: list[CheckedDocument] = []
        if not uploads:
            errors["documents"] = "Choose one or more files"
        elif len(uploads) > MAX_EVIDENCE_DOCUMENTS:
            errors["documents"] = f"Choose at most {MAX_EVIDENCE_DOCUMENTS} files at once"
        else:
            reasons = []
            for upload in uploads:
                try:
                    checked.append(await _checked(upload, settings.max_document_bytes))
                except DocumentRefused as refused:
                    reasons.append(f"{refused.filename}: {refused.reason}")
            if reasons:
                errors["documents"] = "; ".join(reasons)
        if errors:
            return await _refused(request, session, "evidence", values, errors, back)
        data = {
            "recommendation_id": recommendation_id,
            "evidence_id": values["evidence_id"],
            "summary": values["summary"],
            "documents": [
                {
                    "name": c.name,
                    "sha256": sha256_of(c.content),
                    "size": c.size,
                    "media_type": c.media_type,
                }
                for c in checked
            ],
        }
        try:
            _command("SubmitEvidence", data, session.actor)
        except InvalidCommand as exc:
            errors = validation_errors(exc.errors, EVIDENCE_LABELS)
            return await _refused(request, session, "evidence", values, errors, back)
        # Kept before the command is sent, so the log never names a document the store lacks.
        store = document_store(request)
        stored = [await store.put(c.content, c.media_type) for c in checked]
        count = f"{len(stored)} file{'s' if len(stored) != 1 else ''}"
        return await _send_one(
            request,
            session,
            kind="SubmitEvidence",
            data=data,
            form_name="evidence",
            values=values,
            labels=EVIDENCE_LABELS,
            back=back,
            done=recommendation_url(recommendation_id),
            success=f"Evidence {values['evidence_id']} submitted with {count}.",
        )
    finally:
        await form.close()


CLOSURE_LABELS = {"evidence_ids": "Evidence", "rationale": "Why it can be closed"}


@router.get("/ui/recommendations/{recommendation_id:path}/closure")
async def closure_form(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    pack, _ = await _allowed(request, recommendation_id, session, "closure")
    options = [(e.evidence_id, f"{e.evidence_id}: {_short(e.summary)}") for e in pack.evidence]
    return _form_page(
        request, "form_closure.html.j2", "closure", pack=pack, evidence_options=options
    )


def _short(text: str, limit: int = 90) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@router.post("/ui/recommendations/{recommendation_id:path}/closure")
async def closure(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    form = await _posted(request, session)
    await _allowed(request, recommendation_id, session, "closure")
    back = recommendation_url(recommendation_id, "/closure")
    chosen = [v for v in form.getlist("evidence_ids") if isinstance(v, str) and v]
    values: dict[str, Any] = {"evidence_ids": chosen, "rationale": _text(form, "rationale")}
    errors = {}
    if not chosen:
        errors["evidence_ids"] = "Select the evidence that shows it has been met"
    if not values["rationale"]:
        errors["rationale"] = "Enter why the recommendation can be closed"
    if errors:
        return await _refused(request, session, "closure", values, errors, back)
    return await _send_one(
        request,
        session,
        kind="ProposeClosure",
        data={
            "recommendation_id": recommendation_id,
            "rationale": values["rationale"],
            "evidence_ids": chosen,
        },
        form_name="closure",
        values=values,
        labels=CLOSURE_LABELS,
        back=back,
        done=recommendation_url(recommendation_id),
        success="Closure proposed: the inspectorate will decide.",
    )


TARGET_LABELS = {
    "target_date": "Target date",
    "reason": "Reason",
    "agreed_with_inspectorate": "Agreed with the inspectorate",
}


@router.get("/ui/recommendations/{recommendation_id:path}/target-date")
async def target_date_form(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    pack, _ = await _allowed(request, recommendation_id, session, "target-date")
    return _form_page(request, "form_target_date.html.j2", "target-date", pack=pack, yes_no=YES_NO)


@router.post("/ui/recommendations/{recommendation_id:path}/target-date")
async def target_date(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    form = await _posted(request, session)
    await _allowed(request, recommendation_id, session, "target-date")
    back = recommendation_url(recommendation_id, "/target-date")
    parts = _date_parts(form, "target_date")
    values: dict[str, Any] = {
        "target_date": parts,
        "reason": _text(form, "reason"),
        "agreed_with_inspectorate": _text(form, "agreed_with_inspectorate"),
    }
    errors = {}
    day, problem = _date(parts, "the target date")
    if problem:
        errors["target_date"] = problem
    if not values["reason"]:
        errors["reason"] = "Enter why this is the target date"
    if values["agreed_with_inspectorate"] not in ("yes", "no"):
        errors["agreed_with_inspectorate"] = "Select whether the inspectorate agreed this date"
    if errors:
        return await _refused(request, session, "target-date", values, errors, back)
    return await _send_one(
        request,
        session,
        kind="SetTargetDate",
        data={
            "recommendation_id": recommendation_id,
            "target_date": day.isoformat() if day else None,
            "reason": values["reason"],
            "agreed_with_inspectorate": values["agreed_with_inspectorate"] == "yes",
        },
        form_name="target-date",
        values=values,
        labels=TARGET_LABELS,
        back=back,
        done=recommendation_url(recommendation_id),
        success="Target date set.",
    )


# -- the inspectorate -------------------------------------------------------------------------

DECISION_LABELS = {"decision": "Decision", "rationale": "Rationale"}


@router.get("/ui/recommendations/{recommendation_id:path}/decision")
async def decision_form(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    pack, entries = await _allowed(request, recommendation_id, session, "decision")
    return _form_page(
        request,
        "form_decision.html.j2",
        "decision",
        pack=pack,
        decisions=DECISIONS,
        proposal=_pending_proposal(pack, entries),
        stored=await stored_documents(request, pack),
    )


def _pending_proposal(pack: HandoverPack, entries: list[HistoryEntry]) -> HistoryEntry | None:
    if not pack.closure_pending:
        return None
    return next((e for e in reversed(entries) if e.type == "ClosureProposed"), None)


@router.post("/ui/recommendations/{recommendation_id:path}/decision")
async def decision(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    form = await _posted(request, session)
    await _allowed(request, recommendation_id, session, "decision")
    back = recommendation_url(recommendation_id, "/decision")
    values = {"decision": _text(form, "decision"), "rationale": _text(form, "rationale")}
    errors = {}
    if values["decision"] not in dict(DECISIONS):
        errors["decision"] = "Select the inspectorate’s decision"
    if not values["rationale"]:
        errors["rationale"] = "Enter the rationale for the decision"
    if errors:
        return await _refused(request, session, "decision", values, errors, back)
    return await _send_one(
        request,
        session,
        kind="RecordInspectorateDecision",
        data={
            "recommendation_id": recommendation_id,
            "decision": values["decision"],
            "rationale": values["rationale"],
        },
        form_name="decision",
        values=values,
        labels=DECISION_LABELS,
        back=back,
        done=recommendation_url(recommendation_id),
        success="Decision recorded.",
    )


@router.get("/ui/recommendations/{recommendation_id:path}/documents/{sha256}")
async def document(
    request: Request, recommendation_id: str, sha256: str, session: SignedIn
) -> Response:
    """An evidence document this recommendation's history names: served by GET /documents/…,
    which authorises the signed-in reader by role, as the API does."""
    pack, _ = await _recommendation(request, recommendation_id)
    if sha256 not in {d.sha256 for e in pack.evidence for d in e.documents}:
        raise HTTPException(404, "This recommendation has no such file.")
    return RedirectResponse(f"/documents/{sha256}", status_code=303)


# -- admins ------------------------------------------------------------------------------------

OWNER_LABELS = {"team": "Team", "owner_role": "Owner’s role", "note": "Note"}


@router.get("/ui/recommendations/{recommendation_id:path}/owner")
async def owner_form(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    pack, _ = await _allowed(request, recommendation_id, session, "owner")
    owner = pack.owners[-1] if pack.owners else None
    defaults = {"team": owner.team, "owner_role": owner.owner_role} if owner else {}
    return _form_page(request, "form_owner.html.j2", "owner", defaults=defaults, pack=pack)


@router.post("/ui/recommendations/{recommendation_id:path}/owner")
async def owner(request: Request, recommendation_id: str, session: SignedIn) -> Response:
    form = await _posted(request, session)
    await _allowed(request, recommendation_id, session, "owner")
    back = recommendation_url(recommendation_id, "/owner")
    values = {n: _text(form, n) for n in OWNER_LABELS}
    errors = {}
    if not values["team"]:
        errors["team"] = "Enter the team that will own it"
    if not values["owner_role"]:
        errors["owner_role"] = "Enter the owner’s role, like Improvement lead"
    if errors:
        return await _refused(request, session, "owner", values, errors, back)
    return await _send_one(
        request,
        session,
        kind="AssignOwner",
        data={
            "recommendation_id": recommendation_id,
            "team": values["team"],
            "owner_role": values["owner_role"],
            "note": values["note"] or None,
        },
        form_name="owner",
        values=values,
        labels=OWNER_LABELS,
        back=back,
        done=recommendation_url(recommendation_id),
        success=f"Assigned to {values['team']}.",
    )


PUBLISH_LABELS = {
    "inspection_id": "Inspection id",
    "title": "Title",
    "inspectorate": "Inspectorate",
    "published_on": "Publication date",
    "inspection_type": "Type of inspection",
    "url": "Link to the report",
}


def _publisher(session: Session) -> None:
    if not actions.may_publish(session.actor):
        raise HTTPException(
            403, f"Publishing needs the inspector or admin role, not {session.actor.role}."
        )


@router.get("/ui/inspections/new")
async def publish_form(request: Request, session: SignedIn) -> Response:
    _publisher(session)
    return _form_page(
        request, "form_publish.html.j2", "publish", defaults={"inspectorate": "HMICS"}
    )


@router.post("/ui/inspections/new")
async def publish(request: Request, session: SignedIn) -> Response:
    form = await _posted(request, session)
    _publisher(session)
    back = "/ui/inspections/new"
    parts = _date_parts(form, "published_on")
    values: dict[str, Any] = {n: _text(form, n) for n in PUBLISH_LABELS if n != "published_on"} | {
        "published_on": parts
    }
    errors = {}
    for name, words in (
        ("inspection_id", "Enter an id for the inspection, like hate-crime-2021"),
        ("title", "Enter the inspection’s title"),
        ("inspectorate", "Enter the inspectorate, like HMICS"),
    ):
        if not values[name]:
            errors[name] = words
    if values["inspection_id"] and not _is_slug(values["inspection_id"]):
        errors["inspection_id"] = (
            "The id must be lower-case letters, digits and hyphens, starting with a letter or digit"
        )
    day, problem = _date(parts, "the publication date")
    if problem:
        errors["published_on"] = problem
    if errors:
        return await _refused(request, session, "publish", values, errors, back)
    inspection_id = values["inspection_id"]
    return await _send_one(
        request,
        session,
        kind="PublishInspection",
        data={
            "inspection_id": inspection_id,
            "title": values["title"],
            "inspectorate": values["inspectorate"],
            "published_on": day.isoformat() if day else None,
            "inspection_type": values["inspection_type"] or None,
            "url": values["url"] or None,
        },
        form_name="publish",
        values=values,
        labels=PUBLISH_LABELS,
        back=back,
        done=f"/ui/inspections/{quote(inspection_id, safe='')}",
        success=f"Inspection {values['title']} published.",
    )


def _is_slug(text: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    return 0 < len(text) <= 80 and text[0] != "-" and set(text) <= allowed


ISSUE_LABELS = {"kind": "Kind", "first_number": "First number", "texts": "Recommendations"}


async def _inspection(request: Request, inspection_id: str) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        found = await queries.inspection(conn, inspection_id)
    if found is None:
        raise HTTPException(404, f"There is no inspection {inspection_id}.")
    return found


def _next_number(found: dict[str, Any], kind: str) -> int:
    numbers = [r["number"] for r in found["recommendations"] if r["kind"] == kind]
    return max(numbers, default=0) + 1


@router.get("/ui/inspections/{inspection_id}/recommendations/new")
async def issue_form(request: Request, inspection_id: str, session: SignedIn) -> Response:
    _publisher(session)
    found = await _inspection(request, inspection_id)
    return _form_page(
        request,
        "form_issue.html.j2",
        "issue",
        defaults={
            "kind": "recommendation",
            "first_number": str(_next_number(found, "recommendation")),
        },
        inspection=found,
        kinds=KINDS,
    )


@router.post("/ui/inspections/{inspection_id}/recommendations/new")
async def issue(request: Request, inspection_id: str, session: SignedIn) -> Response:
    form = await _posted(request, session)
    _publisher(session)
    found = await _inspection(request, inspection_id)
    back = f"/ui/inspections/{quote(inspection_id, safe='')}/recommendations/new"
    values = {n: _text(form, n) for n in ISSUE_LABELS}
    lines = [line.strip() for line in values["texts"].splitlines() if line.strip()]
    errors = {}
    if values["kind"] not in dict(KINDS):
        errors["kind"] = "Select whether these are recommendations or areas for development"
    first = int(values["first_number"]) if values["first_number"].isdigit() else 0
    if not 1 <= first <= 10_000:
        errors["first_number"] = "Enter the number of the first one, a whole number from 1"
    if not lines:
        errors["texts"] = "Enter the recommendations, one per line"
    if errors:
        return await _refused(request, session, "issue", values, errors, back)
    commands = []
    for offset, text in enumerate(lines):
        data = {
            "inspection_id": inspection_id,
            "number": first + offset,
            "text": text,
            "kind": values["kind"],
        }
        try:
            commands.append(_command("IssueRecommendation", data, session.actor))
        except InvalidCommand as exc:
            reasons = validation_errors(exc.errors, ISSUE_LABELS, {"text": "texts"})
            errors["texts"] = f"Line {offset + 1}: {next(iter(reasons.values()))}"
            return await _refused(request, session, "issue", values, errors, back)
    outcomes = await _submit(request, commands)
    accepted = [o for c in commands if (o := outcomes.get(c.command_id)) and o.status == "accepted"]
    problems = []
    for offset, c in enumerate(commands):
        o = outcomes.get(c.command_id)
        if o is None:
            problems.append(f"line {offset + 1}: not confirmed yet, reload the inspection")
        elif o.status != "accepted":
            words = next(iter(rejection_errors(c.type, o.reason, o.detail).values()))
            problems.append(f"line {offset + 1} (number {first + offset}): {words}")
    await _projected(request, accepted)
    to = f"/ui/inspections/{quote(inspection_id, safe='')}"
    if not problems:
        return await _done(request, session, f"{len(accepted)} issued to {found['title']}.", to)
    kept = [lines[i] for i, c in enumerate(commands) if outcomes.get(c.command_id) not in accepted]
    values["texts"] = "\n".join(kept)
    issued = f"{len(accepted)} issued. " if accepted else ""
    errors = {"texts": issued + "Not issued: " + "; ".join(problems)}
    return await _refused(request, session, "issue", values, errors, back)


COMMITTEE_LABELS = {"committee": "Committee", "meeting_date": "Meeting date", "title": "Title"}


def _secretary(session: Session) -> None:
    if not actions.may_record_committee_update(session.actor):
        raise HTTPException(
            403, f"Recording committee updates needs the admin role, not {session.actor.role}."
        )


@router.get("/ui/committee-updates/new")
async def committee_form(request: Request, session: SignedIn) -> Response:
    _secretary(session)
    return _form_page(request, "form_committee.html.j2", "committee")


@router.post("/ui/committee-updates/new")
async def committee(request: Request, session: SignedIn) -> Response:
    form = await _posted(request, session)
    _secretary(session)
    back = "/ui/committee-updates/new"
    parts = _date_parts(form, "meeting_date")
    values: dict[str, Any] = {
        "committee": _text(form, "committee"),
        "title": _text(form, "title"),
        "meeting_date": parts,
    }
    errors = {}
    if not values["committee"]:
        errors["committee"] = "Enter the committee’s short name, like spa-policing-performance"
    elif not _is_slug(values["committee"]):
        errors["committee"] = (
            "The committee’s short name must be lower-case letters, digits and hyphens"
        )
    day, problem = _date(parts, "the meeting date")
    if problem:
        errors["meeting_date"] = problem
    if not values["title"]:
        errors["title"] = "Enter the update’s title, like HMICS Improvement Update"
    if errors:
        return await _refused(request, session, "committee", values, errors, back)
    return await _send_one(
        request,
        session,
        kind="RecordCommitteeUpdate",
        data={
            "committee": values["committee"],
            "meeting_date": day.isoformat() if day else None,
            "title": values["title"],
        },
        form_name="committee",
        values=values,
        labels=COMMITTEE_LABELS,
        back=back,
        done="/",
        success=f"Committee update recorded for {day:%d %B %Y}." if day else "Recorded.",
    )
