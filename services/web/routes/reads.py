"""Reads of the read model: the report, inspections, recommendations with history and handover."""

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from projections.recommendations import queries
from projections.recommendations.handover import HandoverPack, build_handover
from projections.recommendations.history import HistoryEntry
from projections.recommendations.report import Report
from services.web.auth import ReaderActor

router = APIRouter(tags=["reads"])


@router.get("/report", response_model=Report)
async def get_report(
    request: Request,
    _: ReaderActor,
    as_of: date,
    since: date | None = None,
    known_at: datetime | None = None,
    inspection: str | None = None,
    committee: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Total | Closed | Ongoing – on track | Ongoing – delayed per inspection, as of a date.

    `committee` (its id or its name) makes "since the last update" that committee's; one with
    no recorded update is 422 naming `committee`, as is `since` after `as_of`; an unknown
    `inspection` is 404. `since_note` says where "since" starts,
    also when no earlier update exists.
    """
    async with request.app.state.pool.acquire() as conn:
        try:
            text = await queries.report_json(
                conn,
                as_of=as_of,
                since=since,
                known_at=known_at,
                inspection_id=inspection,
                committee=committee,
            )
        except queries.UnknownCommittee as exc:
            raise HTTPException(422, [{"field": "committee", "reason": str(exc)}]) from None
        except queries.ImpossibleRange as exc:
            raise HTTPException(422, [{"field": "since", "reason": str(exc)}]) from None
        except queries.UnknownInspection as exc:
            raise HTTPException(404, str(exc)) from None
    # PostgreSQL wrote the JSON: re-validating 100k lines here would cost seconds.
    return Response(text, media_type="application/json")


@router.get("/inspections")
async def list_inspections(request: Request, _: ReaderActor) -> list[dict[str, Any]]:
    """Every inspection with its current counts."""
    async with request.app.state.pool.acquire() as conn:
        return await queries.inspections(conn)


@router.get("/inspections/{inspection_id}")
async def get_inspection(request: Request, inspection_id: str, _: ReaderActor) -> dict[str, Any]:
    """One inspection and the current state of its recommendations."""
    async with request.app.state.pool.acquire() as conn:
        found = await queries.inspection(conn, inspection_id)
    if found is None:
        raise HTTPException(404, f"no inspection {inspection_id}")
    return found


@router.get("/recommendations/{recommendation_id:path}/handover")
async def get_handover(
    request: Request, recommendation_id: str, _: ReaderActor, as_of: date | None = None
) -> HandoverPack:
    """What a new owner needs: text, status, owners, evidence, asks, last position."""
    async with request.app.state.pool.acquire() as conn:
        pack = await queries.handover(conn, recommendation_id, as_of=as_of or date.today())
    if pack is None:
        raise HTTPException(404, f"no recommendation {recommendation_id}")
    return pack


@router.get("/recommendations/{recommendation_id:path}/history")
async def get_history(
    request: Request, recommendation_id: str, _: ReaderActor
) -> list[HistoryEntry]:
    """Every event of a recommendation, in order."""
    async with request.app.state.pool.acquire() as conn:
        entries = await queries.history(conn, recommendation_id)
    if not entries:
        raise HTTPException(404, f"no recommendation {recommendation_id}")
    return entries


# After the routes above: a path parameter would swallow their suffixes.
@router.get("/recommendations/{recommendation_id:path}")
async def get_recommendation(
    request: Request, recommendation_id: str, _: ReaderActor, as_of: date | None = None
) -> dict[str, Any]:
    """One recommendation: its history and its handover pack."""
    async with request.app.state.pool.acquire() as conn:
        entries = await queries.history(conn, recommendation_id)
    if not entries:
        raise HTTPException(404, f"no recommendation {recommendation_id}")
    pack = build_handover(recommendation_id, entries, as_of=as_of or date.today())
    return {
        "recommendation_id": recommendation_id,
        "handover": pack.model_dump(mode="json"),
        "history": [e.model_dump(mode="json") for e in entries],
    }
