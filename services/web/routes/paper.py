"""The committee paper over HTTP: `GET /paper`, rendered by the bounded, cached paper pool."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator

from infra.settings import Settings
from projections.recommendations import queries
from services.paper.assemble import check_meeting
from services.paper.render import MEDIA_TYPES, PaperFormat
from services.paper.service import PaperBusy, PaperService
from services.web.auth import ReaderActor


@asynccontextmanager
async def paper_pool(app: FastAPI) -> AsyncIterator[None]:
    """The API's paper workers live as long as the API (a lifespan of this router's own)."""
    settings: Settings = app.state.settings
    papers = PaperService(settings.paper_workers, log_level=settings.log_level)
    papers.start()
    app.state.papers = papers
    try:
        yield
    finally:
        await papers.stop()


# Out of the OpenAPI document, as the dashboard's pages are: it is the dashboard's download.
router = APIRouter(include_in_schema=False, lifespan=paper_pool)


@router.get("/paper")
async def paper_download(
    request: Request,
    _: ReaderActor,
    meeting: Annotated[date, Query(), AfterValidator(check_meeting)],
    committee: Annotated[str | None, Query(max_length=500)] = None,
    format: Annotated[PaperFormat, Query()] = PaperFormat.html,
) -> Response:
    """The improvement update for a meeting: md, html or pdf (422 naming a bad parameter).

    `committee` is a committee's id or its name; one with no recorded update is refused (422
    naming `committee`, listing the committees there are), never a paper counting "since the
    last update" from nowhere.
    """
    papers: PaperService = request.app.state.papers
    if committee is not None:
        # Resolved here, so a paper asked for by name and by id is one paper in the cache.
        async with request.app.state.pool.acquire() as conn:
            try:
                committee = (await queries.resolve_committee(conn, committee)).committee
            except queries.UnknownCommittee as exc:
                raise HTTPException(422, [{"field": "committee", "reason": str(exc)}]) from None
    try:
        content = await papers.paper(
            request.app.state.pool, meeting=meeting, committee=committee, fmt=format
        )
    except PaperBusy as busy:
        raise HTTPException(
            503, str(busy), headers={"Retry-After": str(busy.retry_after)}
        ) from None
    headers = {}
    if format is not PaperFormat.html:
        name = f"improvement-update-{meeting.isoformat()}.{format.value}"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(content, media_type=MEDIA_TYPES[format], headers=headers)
