"""A synthetic, deterministic, valid history of commands (`rectrack bench generate`).

Inspections with 5–30 recommendations each; owners change, target dates slip, evidence is
submitted, closures proposed and decided, committees meet. Every command is valid under the
lifecycle rules when applied in file order, so N commands give N events.
"""

import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import orjson

START = date(2019, 1, 7)
SPAN_DAYS = 2400  # the history ends well before today, whatever its size
TEAMS = ["ppcw", "specialist-crime", "contact-command", "crime-registrars", "local-policing"]
ADMIN = {"name": "Bench admin", "team": "secretariat", "role": "admin"}
INSPECTOR = {"name": "Bench inspector", "team": "hmics", "role": "inspector"}


def _line(
    rng_ns: uuid.UUID, i: int, type_: str, day: date, actor: dict[str, str], data: dict[str, Any]
) -> bytes:
    doc = {
        "type": type_,
        "command_id": str(uuid.uuid5(rng_ns, str(i))),
        "effective_date": day.isoformat(),
        "actor": actor,
        "data": data,
    }
    return orjson.dumps(doc)


class _Recommendation:
    def __init__(self, rid: str, day: date) -> None:
        self.rid, self.day = rid, day
        self.owner: str | None = None
        self.evidence = 0
        self.pending = False
        self.closed = False


def commands(events: int, seed: int) -> Iterator[bytes]:
    """Exactly `events` command lines."""
    rng = random.Random(seed)
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"rectrack-bench/{seed}")
    i, day, inspection_no, meeting = 0, START, 0, START
    open_recs: list[_Recommendation] = []
    while i < events:
        day = START + timedelta(days=i * SPAN_DAYS // events)
        if not open_recs or rng.random() < 0.02:
            inspection_no += 1
            insp = f"bench-{seed}-{inspection_no}"
            yield _line(
                ns,
                i,
                "PublishInspection",
                day,
                INSPECTOR,
                {
                    "inspection_id": insp,
                    "title": f"Inspection {inspection_no}",
                    "inspectorate": "HMICS",
                    "published_on": day.isoformat(),
                },
            )
            i += 1
            for n in range(1, rng.randint(5, 30) + 1):
                if i >= events:
                    return
                yield _line(
                    ns,
                    i,
                    "IssueRecommendation",
                    day,
                    INSPECTOR,
                    {"inspection_id": insp, "number": n, "text": f"Recommendation {n}"},
                )
                open_recs.append(_Recommendation(f"{insp}/r{n}", day))
                i += 1
            continue
        if day - meeting > timedelta(days=90):
            meeting = day
            yield _line(
                ns,
                i,
                "RecordCommitteeUpdate",
                day,
                ADMIN,
                {
                    "committee": "bench-committee",
                    "meeting_date": day.isoformat(),
                    "title": "Improvement update",
                },
            )
            i += 1
            continue
        rec = rng.choice(open_recs)
        line = _step(rng, ns, i, rec, day)
        if rec.closed:
            open_recs.remove(rec)
        yield line
        i += 1


def _step(rng: random.Random, ns: uuid.UUID, i: int, rec: _Recommendation, day: date) -> bytes:
    rid = rec.rid
    if rec.owner is None or rng.random() < 0.05:
        rec.owner = rng.choice(TEAMS)
        return _line(
            ns,
            i,
            "AssignOwner",
            day,
            ADMIN,
            {"recommendation_id": rid, "team": rec.owner, "owner_role": "lead"},
        )
    team = {"name": "Bench contributor", "team": rec.owner, "role": "contributor"}
    roll = rng.random()
    if rec.pending:
        decision = "closed" if roll < 0.6 else rng.choice(["kept_open", "more_evidence_requested"])
        rec.pending, rec.closed = False, decision == "closed"
        return _line(
            ns,
            i,
            "RecordInspectorateDecision",
            day,
            INSPECTOR,
            {"recommendation_id": rid, "decision": decision, "rationale": "Reviewed."},
        )
    if roll < 0.15:
        return _line(
            ns,
            i,
            "SetTargetDate",
            day,
            team,
            {
                "recommendation_id": rid,
                "target_date": (day + timedelta(days=rng.randint(30, 400))).isoformat(),
                "reason": "Plan revised.",
                "agreed_with_inspectorate": rng.random() < 0.7,
            },
        )
    if roll < 0.6 or (rec.evidence == 0 and roll < 0.8):
        delayed = rng.random() < 0.3
        data: dict[str, Any] = {
            "recommendation_id": rid,
            "position": "Work continues.",
            "delivery_status": "delayed" if delayed else "on_track",
        }
        if delayed:
            data["delay_reason"] = rng.choice(
                ["legislation", "system", "resourcing", "dependency", "other"]
            )
        return _line(ns, i, "ReportProgress", day, team, data)
    if rec.evidence == 0 or roll < 0.85:
        rec.evidence += 1
        return _line(
            ns,
            i,
            "SubmitEvidence",
            day,
            team,
            {
                "recommendation_id": rid,
                "evidence_id": f"e{rec.evidence}",
                "summary": "Evidence summary form.",
                "documents": [{"name": "esf.pdf", "sha256": f"{rec.evidence:064x}"}],
            },
        )
    rec.pending = True
    return _line(
        ns,
        i,
        "ProposeClosure",
        day,
        team,
        {"recommendation_id": rid, "rationale": "Delivered.", "evidence_ids": [f"e{rec.evidence}"]},
    )
