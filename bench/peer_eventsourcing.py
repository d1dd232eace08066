"""The peer: the same history through the `eventsourcing` library's PostgreSQL recorders.

    python -m bench.peer_eventsourcing --events 10000 [--seed 1] [--batch 500]

Append: the generated history as StoredEvents, `insert_events` in batches, into the library's
application recorder. Projection: `select_notifications` in pages, each page applied to a
materialised view (a `PostgresTrackingRecorder` subclass: one row per recommendation plus an
event log) in one transaction with its tracking record. Everything lives in a schema of its
own (`POSTGRES_SCHEMA`), dropped at the end; the instance's data is never touched.
Needs `pip install "eventsourcing[postgres]==9.5.6"` (not a project dependency).
"""

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent, Tracking
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import Environment
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier

from bench.generate import commands
from services.domain.commands import COMMAND_TYPES, stream_id_of

APP_NAME = "rectrack_peer"  # names the tables (rectrack_peer_events, ..._tracking, ...)
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "rectrack-bench/peer")
# Commands on a recommendation's stream: the ones naming it, and the one that issues it.
RECOMMENDATION_TYPES = {"IssueRecommendation"} | {
    name for name, model in COMMAND_TYPES.items() if "recommendation_id" in model.model_fields
}

# One row per recommendation event; the update branch keeps what the event does not set.
UPSERT = """
INSERT INTO {schema}.{view} AS v (
    recommendation_id, inspection_id, number, text, owner_team, owner_role, target_date,
    target_date_revisions, delivery_status, delay_reason, latest_position, evidence_count,
    closure_pending, last_decision, stream_version, last_notification_id
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (recommendation_id) DO UPDATE SET
    owner_team = COALESCE(EXCLUDED.owner_team, v.owner_team),
    owner_role = COALESCE(EXCLUDED.owner_role, v.owner_role),
    target_date = COALESCE(EXCLUDED.target_date, v.target_date),
    target_date_revisions = v.target_date_revisions + EXCLUDED.target_date_revisions,
    delivery_status = COALESCE(EXCLUDED.delivery_status, v.delivery_status),
    delay_reason = CASE WHEN EXCLUDED.delivery_status IS NULL
                        THEN v.delay_reason ELSE EXCLUDED.delay_reason END,
    latest_position = COALESCE(EXCLUDED.latest_position, v.latest_position),
    evidence_count = v.evidence_count + EXCLUDED.evidence_count,
    closure_pending = COALESCE(EXCLUDED.closure_pending, v.closure_pending),
    last_decision = COALESCE(EXCLUDED.last_decision, v.last_decision),
    stream_version = EXCLUDED.stream_version,
    last_notification_id = EXCLUDED.last_notification_id
"""

ViewRow = tuple[Any, ...]
LogRow = tuple[int, uuid.UUID | str, int, str, str]


def stream_of(type_: str, data: dict[str, Any]) -> str:
    """The stream id rectrack gives a command of this type (rectrack's own rule)."""
    return stream_id_of(COMMAND_TYPES[type_].model_validate(data))


def stored_events(lines: Iterable[bytes]) -> list[StoredEvent]:
    """One StoredEvent per command line: uuid5 of the stream, versions 1, 2, 3… per stream."""
    versions: dict[str, int] = {}
    out: list[StoredEvent] = []
    for line in lines:
        doc = orjson.loads(line)
        type_, data = doc["type"], doc["data"]
        stream = stream_of(type_, data)
        version = versions.get(stream, 0) + 1
        versions[stream] = version
        out.append(
            StoredEvent(
                originator_id=uuid.uuid5(NAMESPACE, stream),
                originator_version=version,
                topic=type_,
                state=orjson.dumps(data),
            )
        )
    return out


VIEW_COLUMNS = (
    "inspection_id",
    "number",
    "text",
    "owner_team",
    "owner_role",
    "target_date",
    "target_date_revisions",
    "delivery_status",
    "delay_reason",
    "latest_position",
    "evidence_count",
    "closure_pending",
    "last_decision",
)


def view_row(notification: Notification, data: dict[str, Any]) -> ViewRow | None:
    """The upsert parameters for one event, or None when it is not a recommendation's."""
    type_ = notification.topic
    if type_ not in RECOMMENDATION_TYPES:
        return None
    row: dict[str, Any] = {"target_date_revisions": 0, "evidence_count": 0}
    if type_ == "IssueRecommendation":
        row |= {k: data[k] for k in ("inspection_id", "number", "text")}
        row["closure_pending"] = False
    elif type_ == "AssignOwner":
        row |= {"owner_team": data["team"], "owner_role": data.get("owner_role")}
    elif type_ == "SetTargetDate":
        row |= {"target_date": data["target_date"], "target_date_revisions": 1}
    elif type_ == "ReportProgress":
        row |= {"delivery_status": data["delivery_status"], "latest_position": data["position"]}
        row["delay_reason"] = data.get("delay_reason")
    elif type_ == "SubmitEvidence":
        row["evidence_count"] = 1
    elif type_ == "ProposeClosure":
        row["closure_pending"] = True
    else:  # RecordInspectorateDecision
        row |= {"closure_pending": False, "last_decision": data["decision"]}
    return (
        stream_of(type_, data),
        *(row.get(c) for c in VIEW_COLUMNS),
        notification.originator_version,
        notification.id,
    )


class RecommendationsView(PostgresTrackingRecorder):
    """Current state per recommendation plus an event log, written with the tracking record."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        """Tables named after the tracking table, as the library's own examples do."""
        super().__init__(datastore, **kwargs)
        base = self.tracking_table_name.removesuffix("_tracking")
        self.view_table_name = base + "_recommendations"
        self.log_table_name = base + "_event_log"
        self.check_identifier_length(self.view_table_name)
        self.check_identifier_length(self.log_table_name)
        schema = Identifier(self.datastore.schema)
        view, log = Identifier(self.view_table_name), Identifier(self.log_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{view} ("
                "recommendation_id text PRIMARY KEY, inspection_id text, number integer, "
                "text text, owner_team text, owner_role text, target_date date, "
                "target_date_revisions integer NOT NULL, delivery_status text, "
                "delay_reason text, latest_position text, evidence_count integer NOT NULL, "
                "closure_pending boolean, last_decision text, "
                "stream_version bigint NOT NULL, last_notification_id bigint NOT NULL)"
            ).format(schema=schema, view=view)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{log} ("
                "notification_id bigint PRIMARY KEY, originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, topic text NOT NULL, data jsonb NOT NULL, "
                "UNIQUE (originator_id, originator_version))"
            ).format(schema=schema, log=log)
        )
        self.upsert_statement = SQL(UPSERT).format(schema=schema, view=view)
        self.log_statement = SQL(
            "INSERT INTO {schema}.{log} "
            "(notification_id, originator_id, originator_version, topic, data) "
            "VALUES (%s, %s, %s, %s, %s::jsonb)"
        ).format(schema=schema, log=log)

    def project_page(self, notifications: Sequence[Notification], tracking: Tracking) -> None:
        """Apply one page in one transaction; a repeated tracking raises IntegrityError."""
        view_rows: list[ViewRow] = []
        log_rows: list[LogRow] = []
        for n in notifications:
            data = orjson.loads(n.state)
            row = view_row(n, data)
            if row is not None:
                view_rows.append(row)
            log_rows.append(
                (n.id, n.originator_id, n.originator_version, n.topic, n.state.decode())
            )
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)  # first, so a redelivered page does nothing
            if view_rows:
                curs.executemany(self.upsert_statement, view_rows)
            curs.executemany(self.log_statement, log_rows)

    def counts(self) -> tuple[int, int]:
        """Rows in the view and in the event log."""
        schema = Identifier(self.datastore.schema)
        view, log = Identifier(self.view_table_name), Identifier(self.log_table_name)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT (SELECT count(*) FROM {schema}.{view}) AS v, "
                    "(SELECT count(*) FROM {schema}.{log}) AS l"
                ).format(schema=schema, view=view, log=log)
            )
            row = curs.fetchone()
        assert row is not None
        return int(row["v"]), int(row["l"])


def factory_env(database_url: str, schema: str) -> Environment:
    """The library's PostgreSQL settings for `database_url`, with tables in `schema`."""
    info = conninfo_to_dict(database_url)
    return Environment(
        APP_NAME,
        {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
            "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
            "POSTGRES_PORT": str(info.get("port") or "5432"),
            "POSTGRES_USER": str(info.get("user") or "postgres"),
            "POSTGRES_PASSWORD": str(info.get("password") or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "0",
        },
    )


def append(recorder: PostgresApplicationRecorder, events: list[StoredEvent], batch: int) -> float:
    """Seconds to insert every event, `batch` per insert_events call."""
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        recorder.insert_events(events[i : i + batch])
    return time.perf_counter() - started


def project(
    recorder: PostgresApplicationRecorder, view: RecommendationsView, page: int
) -> tuple[float, int, list[Notification]]:
    """Seconds to project every notification from the view's position; events; last page."""
    started = time.perf_counter()
    position = view.max_tracking_id(APP_NAME)
    done = 0
    last: list[Notification] = []
    while True:
        notifications = recorder.select_notifications(
            start=position, limit=page, inclusive_of_start=position is None
        )
        if not notifications:
            break
        position = notifications[-1].id
        view.project_page(notifications, Tracking(APP_NAME, position))
        done += len(notifications)
        last = list(notifications)
    return time.perf_counter() - started, done, last


def run_sync(events: int, seed: int, database_url: str, batch: int = 500) -> dict[str, float]:
    """Append and project `events` generated events in a fresh schema, then drop it."""
    history = stored_events(commands(events, seed))
    recommendations = sum(e.topic == "IssueRecommendation" for e in history)
    schema = f"peer_es_{uuid.uuid4().hex[:8]}"
    factory = PostgresFactory(factory_env(database_url, schema))
    try:
        with factory.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE SCHEMA {0}").format(Identifier(schema)))
        try:
            recorder = factory.application_recorder()
            assert isinstance(recorder, PostgresApplicationRecorder)
            view = factory.tracking_recorder(RecommendationsView)
            append_s = append(recorder, history, batch)
            project_s, projected, last = project(recorder, view, batch)
            if projected != len(history) or view.counts() != (recommendations, len(history)):
                raise RuntimeError(f"projected {projected}, view {view.counts()}")
            try:  # a page seen again is refused by its tracking record
                view.project_page(last, Tracking(APP_NAME, last[-1].id))
            except IntegrityError:
                pass
            else:
                raise RuntimeError("a repeated tracking record was accepted")
        finally:
            with factory.datastore.transaction(commit=True) as curs:
                curs.execute(SQL("DROP SCHEMA {0} CASCADE").format(Identifier(schema)))
    finally:
        factory.close()
    return {
        "peer_events": len(history),
        "peer_append_per_s": round(len(history) / append_s, 1),
        "peer_projection_per_s": round(projected / project_s, 1),
    }


async def run(events: int, seed: int, database_url: str, batch: int = 500) -> dict[str, float]:
    """The peer's figures; the library is synchronous, so it runs in a thread."""
    return await asyncio.to_thread(run_sync, events, seed, database_url, batch)
