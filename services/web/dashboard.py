"""The web dashboard: server-rendered, readable without JavaScript, read-only."""

import functools
from datetime import date
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from projections.recommendations import queries
from projections.recommendations.handover import build_handover
from services.look import environment
from services.web.auth import COOKIE, PageActor, token_actor
from services.web.links import is_web_url

router = APIRouter(include_in_schema=False)
STATUSES = ("closed", "ongoing_on_track", "ongoing_delayed")


@functools.cache
def templates() -> jinja2.Environment:
    """The dashboard's templates over the shared layout; `is web_url` guards every stored link."""
    env = environment("services.web")
    env.tests["web_url"] = is_web_url
    return env


def _page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates().get_template(name).render(**context))


@router.get("/login")
async def login_form(error: str | None = None) -> HTMLResponse:
    return _page("login.html.j2", error=error)


@router.post("/login")
async def login(request: Request, token: Annotated[str, Form(max_length=200)]) -> Response:
    if await token_actor(request, token) is None:
        return RedirectResponse("/login?error=1", status_code=303)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=8 * 3600)
    return response


@router.get("/")
async def overview(request: Request, _: PageActor, as_of: date | None = None) -> HTMLResponse:
    day = as_of or date.today()
    async with request.app.state.pool.acquire() as conn:
        report = await queries.report(conn, as_of=day)
        updates = await queries.committee_updates(conn)
    return _page("overview.html.j2", report=report, updates=updates, as_of=day)


@router.get("/ui/inspections/{inspection_id}")
async def inspection_page(
    request: Request,
    inspection_id: str,
    _: PageActor,
    as_of: date | None = None,
    status: Annotated[
        str | None, Query(pattern="^(closed|ongoing_on_track|ongoing_delayed)$")
    ] = None,
) -> HTMLResponse:
    day = as_of or date.today()
    async with request.app.state.pool.acquire() as conn:
        found = await queries.inspection(conn, inspection_id)
        report = await queries.report(conn, as_of=day, inspection_id=inspection_id)
    if found is None or not report.inspections:
        raise HTTPException(404, f"no inspection {inspection_id} published by {day}")
    texts = {r["recommendation_id"]: r for r in found["recommendations"]}
    line = report.inspections[0]
    rows = [
        {
            **r,
            "text": texts[r["recommendation_id"]]["text"],
            "last_update": texts[r["recommendation_id"]]["last_effective_date"],
        }
        for r in line.recommendations
        if status is None or r["status"] == status
    ]
    return _page(
        "inspection.html.j2",
        inspection=found,
        line=line,
        rows=rows,
        as_of=day,
        status=status,
        statuses=STATUSES,
    )


@router.get("/ui/recommendations/{recommendation_id:path}")
async def recommendation_page(
    request: Request, recommendation_id: str, _: PageActor, as_of: date | None = None
) -> HTMLResponse:
    day = as_of or date.today()
    async with request.app.state.pool.acquire() as conn:
        entries = await queries.history(conn, recommendation_id)
    if not entries:
        raise HTTPException(404, f"no recommendation {recommendation_id}")
    pack = build_handover(recommendation_id, entries, as_of=day)
    return _page(
        "recommendation.html.j2",
        entries=entries,
        pack=pack,
        as_of=day,
        inspection_id=recommendation_id.split("/")[0],
    )
