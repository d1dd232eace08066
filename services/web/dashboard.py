"""The browser's read pages, sign-in and sign-out: server-rendered, no script.

Forms that send commands are in forms.py; sessions and their CSRF tokens in sessions.py.
"""

from datetime import date
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from events.recommendation import ClosureProposed
from projections.recommendations import queries
from projections.recommendations.handover import build_handover
from projections.recommendations.report import InspectionLine
from services.web import actions
from services.web.auth import PageSession, session_of
from services.web.evidence import stored_documents
from services.web.headers import API_DOCS_CSP
from services.web.pages import page
from services.web.pages import templates as page_templates
from services.web.sessions import (
    COOKIE,
    CSRF_FIELD,
    LOGIN_COOKIE,
    Lifetimes,
    clear_session_cookie,
    clear_signin_cookie,
    csrf_matches,
    end_session,
    new_signin_token,
    set_session_cookie,
    set_signin_cookie,
    start_session,
)

router = APIRouter(include_in_schema=False)
STATUSES = ("closed", "ongoing_on_track", "ongoing_delayed")
FORGED = (
    "This form has expired or did not come from this service, so nothing was changed. "
    "Go back, reload the page and try again."
)


def templates() -> jinja2.Environment:
    """The pages' templates (kept here for the headers' style hashes)."""
    return page_templates()


@router.get("/login")
async def login_form(
    request: Request,
    error: str | None = None,
    ended: str | None = None,
    signed_out: str | None = None,
) -> HTMLResponse:
    await session_of(request)
    token = new_signin_token()
    errors = {"token": "Enter a valid API token: this one is unknown or revoked"} if error else {}
    response = page(
        request,
        "login.html.j2",
        nav="login",
        errors=errors,
        csrf=token,
        ended=bool(ended),
        signed_out=bool(signed_out),
    )
    set_signin_cookie(request, response, token)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=4)
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not csrf_matches(expected, form.get(CSRF_FIELD)):
        raise HTTPException(403, FORGED)
    token = form.get("token")
    started = None
    if isinstance(token, str) and 0 < len(token) <= 200:
        async with request.app.state.pool.acquire() as conn:
            started = await start_session(conn, token, Lifetimes.of(request.app.state.settings))
    if started is None:
        return RedirectResponse("/login?error=1", status_code=303)
    secret, _ = started
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, secret)
    clear_signin_cookie(request, response)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await session_of(request)
    if session is not None:
        form = await request.form(max_files=0, max_fields=4)
        if not csrf_matches(session.csrf_token, form.get(CSRF_FIELD)):
            raise HTTPException(403, FORGED)
        async with request.app.state.pool.acquire() as conn:
            await end_session(conn, request.cookies[COOKIE])
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    clear_session_cookie(request, response)
    return response


@router.get("/")
async def overview(request: Request, session: PageSession, as_of: date | None = None) -> Response:
    day = as_of or date.today()
    async with request.app.state.pool.acquire() as conn:
        report = await queries.report(conn, as_of=day)
        updates = await queries.committee_updates(conn)
    actor = session.actor if session else None
    return page(
        request,
        "overview.html.j2",
        nav="overview",
        report=report,
        updates=updates,
        as_of=day,
        may_publish=actions.may_publish(actor),
        may_record_update=actions.may_record_committee_update(actor),
    )


@router.get("/ui/inspections/{inspection_id}")
async def inspection_page(
    request: Request,
    inspection_id: str,
    session: PageSession,
    as_of: date | None = None,
    status: Annotated[
        str | None, Query(pattern="^(closed|ongoing_on_track|ongoing_delayed)$")
    ] = None,
) -> Response:
    day = as_of or date.today()
    async with request.app.state.pool.acquire() as conn:
        found = await queries.inspection(conn, inspection_id)
        if found is None:
            raise HTTPException(404, f"No inspection {inspection_id} is known.")
        report = await queries.report(conn, as_of=day, inspection_id=inspection_id)
    if not report.inspections and found["published_on"] > day:
        raise HTTPException(404, f"No inspection {inspection_id} was published by {day:%d %B %Y}.")
    texts = {r["recommendation_id"]: r for r in found["recommendations"]}
    line = report.inspections[0] if report.inspections else _empty_line(found)
    rows = [
        {
            **r,
            "text": texts[r["recommendation_id"]]["text"],
            "last_update": texts[r["recommendation_id"]]["last_effective_date"],
        }
        for r in line.recommendations
        if status is None or r["status"] == status
    ]
    return page(
        request,
        "inspection.html.j2",
        nav="overview",
        inspection=found,
        line=line,
        rows=rows,
        as_of=day,
        status=status,
        statuses=STATUSES,
        may_issue=actions.may_publish(session.actor if session else None),
    )


def _empty_line(found: dict[str, Any]) -> InspectionLine:
    """The line of an inspection published with no recommendation yet."""
    return InspectionLine(
        inspection_id=found["inspection_id"],
        title=found["title"],
        total=0,
        closed=0,
        ongoing_on_track=0,
        ongoing_delayed=0,
        closed_since=[],
        recommendations=[],
    )


@router.get("/ui/recommendations/{recommendation_id:path}")
async def recommendation_page(
    request: Request, recommendation_id: str, session: PageSession, as_of: date | None = None
) -> Response:
    day = as_of or date.today()
    async with request.app.state.pool.acquire() as conn:
        entries = await queries.history(conn, recommendation_id)
    if not entries:
        raise HTTPException(404, f"There is no recommendation {recommendation_id}.")
    pack = build_handover(recommendation_id, entries, as_of=day)
    current = build_handover(recommendation_id, entries, as_of=date.today())
    proposal = next((e for e in reversed(entries) if isinstance(e.data, ClosureProposed)), None)
    actor = session.actor if session else None
    return page(
        request,
        "recommendation.html.j2",
        nav="overview",
        entries=entries,
        pack=pack,
        as_of=day,
        inspection_id=recommendation_id.split("/")[0],
        actions=actions.available(actor, current),
        owner_team=actions.owner_team(current),
        proposal=proposal if current.closure_pending else None,
        stored=await stored_documents(request, pack),
    )


@router.get("/api-docs")
async def api_docs(request: Request) -> Response:
    """Swagger UI over /openapi.json, served from this app; the one page that runs script
    (its own files only: see headers.API_DOCS_CSP)."""
    await session_of(request)
    return page(
        request,
        "api_docs.html.j2",
        nav="api",
        headers={"Content-Security-Policy": API_DOCS_CSP},
    )


@router.get("/docs")
async def old_docs() -> RedirectResponse:
    """The address FastAPI's own Swagger UI had: the API page now."""
    return RedirectResponse("/api-docs", status_code=308)


@router.get("/accessibility")
async def accessibility(request: Request) -> Response:
    await session_of(request)
    return page(request, "accessibility.html.j2", nav="accessibility")
