"""Read queries over the recommendations read model (history tables, not log replays)."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from events.names import NoId, derive_id
from projections.recommendations.handover import HandoverPack, build_handover
from projections.recommendations.history import HistoryEntry, entry_from_row
from projections.recommendations.project import NAME
from projections.recommendations.report import (
    Committee,
    CommitteeUpdate,
    InspectionLine,
    Report,
    SinceBasis,
    since_note,
)
from projections.status import closure_sql, status_sql

_STATUS = status_sql(
    decision="s.last_decision",
    delivery_status="s.delivery_status",
    target_date="s.target_date",
    as_of="$1",
)

# The whole report in one statement. Per counted recommendation, the state interval in force on
# business date $1 as the system knew it at $2 (NULL: now), classified by the status rule; then
# per inspection the four counts, the closures since $4 and the lines; PostgreSQL writes each
# inspection's JSON, so a 100,000-recommendation report costs no Python per line.
# Lines are JSON text joined by string_agg, with every free-text value escaped by to_json: half
# the cost of json_build_object per line, which dominated the report (see BENCHMARKS.md).
_LINE_JSON = """'{"number":' || l.number
    || ',"recommendation_id":' || to_json(l.recommendation_id)
    || ',"status":"' || l.status || '"'
    || ',"closure":' || coalesce('"' || l.closure || '"', 'null')
    || ',"owner":' || coalesce(to_json(l.owner)::text, 'null')
    || ',"target_date":' || coalesce(to_json(l.target_date)::text, 'null')
    || ',"latest_position":' || coalesce(to_json(l.latest_position)::text, 'null')
    || ',"last_event_id":"' || l.event_id || '"'
    || ',"incomplete":' || l.incomplete::text || '}'"""

# Events in the log that continue their stream's chain but could not be applied (see
# projections/apply.py), by the report's dates: effective by $1, recorded by $2 (NULL: now), so
# a report as known at a past moment is not changed by a bad event appended after it. Dates
# the event's document did not state readably count as "by then".
_UNPROJECTED = f"""
SELECT e.stream_id,
       CASE WHEN strpos(e.stream_id, '/') > 0 THEN split_part(e.stream_id, '/', 1)
            ELSE e.stream_id END AS inspection_id
FROM projection_errors e
WHERE e.projection = '{NAME}' AND e.in_chain
  AND (e.effective_date IS NULL OR e.effective_date <= $1)
  AND ($2::timestamptz IS NULL OR e.event_recorded_at IS NULL OR e.event_recorded_at <= $2)
"""  # noqa: S608 - the projection's constant name only

_REPORT = f"""
WITH unprojected AS ({_UNPROJECTED})
, lines AS (
    SELECT r.inspection_id, r.number, r.recommendation_id, s.decision_date,
           {_STATUS} AS status, {closure_sql("s.last_decision")} AS closure,
           s.owner_team AS owner, s.target_date, s.latest_position, s.event_id,
           EXISTS (SELECT 1 FROM unprojected u WHERE u.stream_id = r.recommendation_id)
               AS incomplete
    FROM recommendations r
    JOIN recommendation_states s USING (recommendation_id)
    WHERE r.kind = 'recommendation' AND r.tracked AND r.issued_on <= $1
      AND ($3::text IS NULL OR r.inspection_id = $3)
      AND s.valid_from <= $1
      AND (
        ($2::timestamptz IS NULL AND (s.valid_to IS NULL OR s.valid_to > $1))
        OR ($2::timestamptz IS NOT NULL AND s.recorded_at <= $2
            AND (s.valid_to IS NULL OR s.valid_to > $1 OR s.superseded_at > $2))
      )
)
, per_inspection AS (
    SELECT i.inspection_id, i.published_on,
           left(json_build_object(
               'inspection_id', i.inspection_id, 'title', i.title,
               'total', count(l.number),
               'closed', count(*) FILTER (WHERE l.status = 'closed'),
               'ongoing_on_track', count(*) FILTER (WHERE l.status = 'ongoing_on_track'),
               'ongoing_delayed', count(*) FILTER (WHERE l.status = 'ongoing_delayed'),
               'unprojected_events',
               (SELECT count(*) FROM unprojected u WHERE u.inspection_id = i.inspection_id)
           )::text, -1)
           || ', "closed_since" : [' || coalesce(string_agg(l.number::text, ',' ORDER BY l.number)
               FILTER (WHERE l.closure IS NOT NULL AND ($4::date IS NULL OR l.decision_date > $4)),
               '')
           || '], "recommendations" : ['
           || coalesce(string_agg({_LINE_JSON}, ',' ORDER BY l.number), '')
           || ']}}' AS inspection_json
    FROM inspections i
    LEFT JOIN lines l USING (inspection_id)
    WHERE i.published_on <= $1 AND ($3::text IS NULL OR i.inspection_id = $3)
      AND ($2::timestamptz IS NULL OR i.recorded_at <= $2)
    GROUP BY i.inspection_id, i.title, i.published_on
)
SELECT inspection_json FROM per_inspection ORDER BY published_on, inspection_id
"""  # noqa: S608 - built from constant column names only

_UNPROJECTED_COUNT = f"""
SELECT count(*) FROM ({_UNPROJECTED}) u WHERE $3::text IS NULL OR u.inspection_id = $3
"""  # noqa: S608 - constant SQL only

_LAST_UPDATE = """
SELECT committee, meeting_date, title FROM committee_updates
WHERE meeting_date < $1 AND ($2::timestamptz IS NULL OR recorded_at <= $2)
  AND ($3::text IS NULL OR committee = $3)
ORDER BY meeting_date DESC, committee
LIMIT 1
"""

# Every committee with an update (as known at $1), and the newest name an update gave it that
# is not merely its id: a committee given once by its name keeps being shown by it.
_COMMITTEES = """
SELECT committee,
       (array_agg(committee_name ORDER BY recorded_at DESC, meeting_date DESC)
            FILTER (WHERE committee_name IS NOT NULL AND committee_name <> committee))[1]
           AS committee_name
FROM committee_updates
WHERE $1::timestamptz IS NULL OR recorded_at <= $1
GROUP BY committee
ORDER BY committee
"""

# How many known committees an "unknown committee" message lists.
_LISTED = 10


class UnknownInspection(LookupError):
    """A report asked for one inspection that the read model does not hold."""


class ImpossibleRange(ValueError):
    """ "Since" after the report's as-of date: nothing could have closed in between."""


class UnknownCommittee(ValueError):
    """A committee asked for (by id or name) that names none with a recorded update.

    Reports and papers refuse it rather than count "since the last update" from nowhere: a
    misspelt or never-recorded committee would otherwise silently widen to all history.
    """


async def committees(conn: asyncpg.Connection, known_at: datetime | None = None) -> list[Committee]:
    """Every committee with a recorded update (as known at a moment), by id."""
    rows = await conn.fetch(_COMMITTEES, known_at)
    return [Committee(committee=r["committee"], committee_name=r["committee_name"]) for r in rows]


def _unknown(given: str, derived: str | None, why: str, known: list[Committee]) -> UnknownCommittee:
    shown = given if len(given) <= 100 else given[:100] + "…"
    what = repr(shown) if derived in (None, given) else f"{shown!r} (id {derived!r})"
    listed = ", ".join(
        c.committee if c.committee_name is None else f"{c.committee} ({c.committee_name})"
        for c in known[:_LISTED]
    )
    more = f" and {len(known) - _LISTED} more" if len(known) > _LISTED else ""
    return UnknownCommittee(
        f"{what} {why}; known: {listed}{more}" if known else f"{what} {why}; none is recorded yet"
    )


async def resolve_committee(
    conn: asyncpg.Connection, given: str, *, known_at: datetime | None = None
) -> Committee:
    """The committee a person named, by its id or its name (events.names.derive_id of either).

    UnknownCommittee when the text makes no id, or its id has no update recorded (as known at
    `known_at`): the message lists the committees there are.
    """
    known = await committees(conn, known_at)
    try:
        derived = derive_id(given.strip())
    except NoId as exc:
        raise _unknown(given, None, f"names no committee: it {exc}", known) from None
    found = next((c for c in known if c.committee == derived), None)
    if found is None:
        raise _unknown(given, derived, "has no recorded update", known)
    return found


async def last_update(
    conn: asyncpg.Connection,
    as_of: date,
    *,
    known_at: datetime | None = None,
    committee: str | None = None,
) -> CommitteeUpdate | None:
    """The latest update strictly before a date, of one committee (by id) or of any."""
    row = await conn.fetchrow(_LAST_UPDATE, as_of, known_at, committee)
    if row is None:
        return None
    named = {c.committee: c.committee_name for c in await committees(conn, known_at)}
    return CommitteeUpdate(
        committee=row["committee"],
        committee_name=named.get(row["committee"]),
        meeting_date=row["meeting_date"],
        title=row["title"],
    )


async def last_update_before(
    conn: asyncpg.Connection,
    as_of: date,
    *,
    known_at: datetime | None = None,
    committee: str | None = None,
) -> date | None:
    """The latest committee update strictly before a date: where "since the last update" starts."""
    found = await last_update(conn, as_of, known_at=known_at, committee=committee)
    return found.meeting_date if found else None


async def committee_updates(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every reporting point, newest first, with its committee's id and the name it is shown by."""
    rows = await conn.fetch(
        "SELECT committee, meeting_date, title FROM committee_updates ORDER BY meeting_date DESC"
    )
    named = {c.committee: c.shown for c in await committees(conn)}
    return [{**dict(r), "committee_shown": named.get(r["committee"], r["committee"])} for r in rows]


async def since_of(
    conn: asyncpg.Connection,
    *,
    as_of: date,
    since: date | None = None,
    known_at: datetime | None = None,
    committee: str | None = None,
) -> tuple[Committee | None, SinceBasis, CommitteeUpdate | None, date | None, str]:
    """Where "since the last update" starts, and the sentence that says so.

    `committee` is what a person asked for, its id or its name (UnknownCommittee if it names
    none). Without `since`, the latest update of that committee (of any, with none asked for)
    strictly before `as_of`; with no such update, nowhere, and the sentence says so.
    Returns (the committee asked for, basis, the update, since, sentence).
    """
    asked = None
    if committee is not None:
        asked = await resolve_committee(conn, committee, known_at=known_at)
    basis: SinceBasis = "given"
    update = None
    if since is None:
        update = await last_update(
            conn, as_of, known_at=known_at, committee=asked.committee if asked else None
        )
        since = update.meeting_date if update else None
        basis = "committee_update" if update else "no_earlier_update"
    note = since_note(as_of=as_of, since=since, basis=basis, committee=asked, update=update)
    return asked, basis, update, since, note


async def report_json(
    conn: asyncpg.Connection,
    *,
    as_of: date,
    since: date | None = None,
    known_at: datetime | None = None,
    inspection_id: str | None = None,
    committee: str | None = None,
) -> str:
    """The report as JSON text, built entirely by PostgreSQL (the `Report` shape).

    An inspection the read model does not hold raises UnknownInspection; `since` after
    `as_of`, ImpossibleRange.

    `committee` (its id or its name) makes "since the last update" that committee's; one that
    names no committee with a recorded update raises UnknownCommittee.
    """
    if since is not None and since > as_of:
        raise ImpossibleRange(f"since {since} is after as of {as_of}")
    if inspection_id is not None and not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM inspections WHERE inspection_id = $1)", inspection_id
    ):
        raise UnknownInspection(f"no inspection {inspection_id!r}")
    asked, basis, update, since, note = await since_of(
        conn, as_of=as_of, since=since, known_at=known_at, committee=committee
    )
    rows = await conn.fetch(_REPORT, as_of, known_at, inspection_id, since)
    unprojected = await conn.fetchval(_UNPROJECTED_COUNT, as_of, known_at, inspection_id)
    # The envelope is joined here: one big string_agg over the inspections cost PostgreSQL a
    # sort of every inspection's text (about 100 ms at 100,000 recommendations).
    header = orjson.dumps(
        {
            "as_of": as_of,
            "since": since,
            "known_at": known_at,
            "unprojected_events": unprojected,
            "committee": asked.committee if asked else None,
            "committee_name": asked.committee_name if asked else None,
            "since_basis": basis,
            "since_update": update.model_dump(mode="json") if update else None,
            "since_note": note,
        }
    ).decode()
    return f'{header[:-1]},"inspections":[{",".join(r[0] for r in rows)}]}}'


async def report(
    conn: asyncpg.Connection,
    *,
    as_of: date,
    since: date | None = None,
    known_at: datetime | None = None,
    inspection_id: str | None = None,
    committee: str | None = None,
) -> Report:
    """The committee table as of a business date, optionally as known at a past moment."""
    doc = orjson.loads(
        await report_json(
            conn,
            as_of=as_of,
            since=since,
            known_at=known_at,
            inspection_id=inspection_id,
            committee=committee,
        )
    )
    # Built by our own query: constructing without validation keeps big reports fast.
    return Report.model_construct(
        as_of=date.fromisoformat(doc["as_of"]),
        since=date.fromisoformat(doc["since"]) if doc["since"] else None,
        known_at=known_at,
        inspections=[InspectionLine.model_construct(**line) for line in doc["inspections"]],
        unprojected_events=doc["unprojected_events"],
        committee=doc["committee"],
        committee_name=doc["committee_name"],
        since_basis=doc["since_basis"],
        since_update=CommitteeUpdate.model_validate(doc["since_update"])
        if doc["since_update"]
        else None,
        since_note=doc["since_note"],
    )


async def current_counts(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """(total, closed) per inspection from the incrementally maintained counts."""
    rows = await conn.fetch("SELECT inspection_id, total, closed FROM inspection_counts")
    return {r["inspection_id"]: (r["total"], r["closed"]) for r in rows}


async def history(conn: asyncpg.Connection, recommendation_id: str) -> list[HistoryEntry]:
    """Every event of a recommendation, in order."""
    rows = await conn.fetch(
        "SELECT stream_version, event_id, type, effective_date, recorded_at, actor_name, "
        "actor_team, actor_role, loaded_by, data FROM event_log WHERE stream_id = $1 "
        "ORDER BY stream_version",
        recommendation_id,
    )
    return [
        entry_from_row(
            {
                **dict(r),
                "data": orjson.loads(r["data"]),
                "loaded_by": orjson.loads(r["loaded_by"]) if r["loaded_by"] else None,
            }
        )
        for r in rows
    ]


async def handover(
    conn: asyncpg.Connection,
    recommendation_id: str,
    *,
    as_of: date,
    known_at: datetime | None = None,
) -> HandoverPack | None:
    """The handover pack of a recommendation, or None if there is no such recommendation."""
    entries = [
        e
        for e in await history(conn, recommendation_id)
        if known_at is None or e.recorded_at <= known_at
    ]
    if not entries:
        return None
    return build_handover(recommendation_id, entries, as_of=as_of)


async def log_position(
    conn: asyncpg.Connection, known_at: datetime | None = None
) -> tuple[int, datetime | None]:
    """How many events the read model holds (as known at a moment) and the newest recorded_at."""
    row = await conn.fetchrow(
        "SELECT count(*) AS events, max(recorded_at) AS last FROM event_log "
        "WHERE $1::timestamptz IS NULL OR recorded_at <= $1",
        known_at,
    )
    return row["events"], row["last"]


_CURRENT_COLUMNS = (
    "recommendation_id, number, kind, text, tracked, issued_on, owner_team, owner_role, "
    "target_date, original_target_date, target_date_revisions, delivery_status, delay_reason, "
    "latest_position, closure_pending, last_decision, decision_date, stream_version, "
    "last_event_id, last_effective_date"
)


async def inspections(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every inspection with its current total and closed counts."""
    rows = await conn.fetch(
        "SELECT i.inspection_id, i.title, i.inspectorate, i.published_on, i.inspection_type, "
        "i.url, coalesce(c.total, 0) AS total, coalesce(c.closed, 0) AS closed "
        "FROM inspections i LEFT JOIN inspection_counts c USING (inspection_id) "
        "ORDER BY i.published_on, i.inspection_id"
    )
    return [dict(r) for r in rows]


async def inspection(conn: asyncpg.Connection, inspection_id: str) -> dict[str, Any] | None:
    """One inspection with the current state of each of its recommendations."""
    row = await conn.fetchrow(
        "SELECT inspection_id, title, inspectorate, published_on, inspection_type, url "
        "FROM inspections WHERE inspection_id = $1",
        inspection_id,
    )
    if row is None:
        return None
    recs = await conn.fetch(
        f"SELECT {_CURRENT_COLUMNS} FROM recommendations "  # noqa: S608 - constant columns
        "WHERE inspection_id = $1 ORDER BY kind DESC, number",
        inspection_id,
    )
    return {**dict(row), "recommendations": [dict(r) for r in recs]}


@dataclass(frozen=True)
class Citation:
    """One evidence event citing a document, with what decides who may read the document."""

    event_id: UUID
    recommendation_id: str
    evidence_id: str
    recorded_at: datetime
    submitted_by_team: str
    owner_team: str | None
    name: str
    size: int | None
    media_type: str | None


# The index event_log_documents (migration 006) answers the containment test.
_CITATIONS = """
SELECT e.event_id, e.stream_id AS recommendation_id, e.data ->> 'evidence_id' AS evidence_id,
       e.recorded_at, e.actor_team AS submitted_by_team, r.owner_team,
       d ->> 'name' AS name, (d ->> 'size')::bigint AS size, d ->> 'media_type' AS media_type
FROM event_log e
CROSS JOIN LATERAL jsonb_array_elements(e.data -> 'documents') d
LEFT JOIN recommendations r ON r.recommendation_id = e.stream_id
WHERE e.type = 'EvidenceSubmitted' AND e.data -> 'documents' @> $2::jsonb
  AND d ->> 'sha256' = $1
ORDER BY e.recorded_at, e.event_id
"""


async def citations(conn: asyncpg.Connection, sha256: str) -> list[Citation]:
    """Every projected evidence event citing the document with this hash, oldest first."""
    rows = await conn.fetch(_CITATIONS, sha256, orjson.dumps([{"sha256": sha256}]).decode())
    return [Citation(**dict(r)) for r in rows]
