"""The committee paper over HTTP: `GET /paper`, rendered by the bounded, cached paper pool."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator

from events.types import Slug
from infra.settings import Settings
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
    committee: Annotated[Slug | None, Query()] = None,
    format: Annotated[PaperFormat, Query()] = PaperFormat.html,
) -> Response:
    """The improvement update for a meeting: md, html or pdf (422 naming a bad parameter)."""
    papers: PaperService = request.app.state.papers
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
