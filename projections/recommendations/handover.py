"""The pack a new owner needs, folded from a recommendation's history; pure."""

from datetime import date

from pydantic import BaseModel

from events.documents import label_of, size_text
from events.recommendation import (
    ClosureProposed,
    Document,
    EvidenceSubmitted,
    InspectorateDecisionRecorded,
    OwnerAssigned,
    ProgressReported,
    RecommendationIssued,
    TargetDateSet,
)
from projections.recommendations.history import DECISION_WORDS, HistoryEntry
from projections.status import STATUS_WORDS, Closure, Status, classify, closure_of
from projections.text import markdown_text


class OwnerPeriod(BaseModel):
    """Who owned it, from when to when: the team's id, and its name where one was given."""

    team: str
    owner_role: str
    from_date: date
    to_date: date | None
    assigned_by: str
    note: str | None
    team_name: str | None = None

    @property
    def shown_team(self) -> str:
        """The team as a person reads it: the name it was given by, else its id."""
        return self.team_name or self.team


# Where the API serves a document (services/web/routes/documents.py); a test holds the two
# together.
DOCUMENT_PATH = "/documents/{sha256}"


class EvidenceDocument(BaseModel):
    """A document of the evidence, with the link that downloads it when rectrack holds it.

    `href` is the API's path for it (relative to the API's address), or None for a document
    cited by hash only (no size recorded: rectrack never stored it).
    """

    name: str
    sha256: str
    size: int | None
    media_type: str | None
    href: str | None

    @classmethod
    def of(cls, document: Document) -> "EvidenceDocument":
        """The pack's view of an event's document."""
        held = document.size is not None
        return cls(
            name=document.name,
            sha256=document.sha256,
            size=document.size,
            media_type=document.media_type,
            href=DOCUMENT_PATH.format(sha256=document.sha256) if held else None,
        )

    def facts(self) -> str:
        """Its kind and size for people ("PDF, 1.2 MB"), or that rectrack does not hold it."""
        if self.size is None:
            return "cited by hash only"
        return ", ".join(x for x in (label_of(self.media_type), size_text(self.size)) if x)


class EvidenceItem(BaseModel):
    """Evidence submitted and what the inspectorate said after it."""

    evidence_id: str
    submitted_on: date
    submitted_by: str
    summary: str
    documents: list[EvidenceDocument]
    inspectorate_responses: list[str]


class Decision(BaseModel):
    """One inspectorate decision."""

    decided_on: date
    decision: str
    rationale: str


class Position(BaseModel):
    """The last position reported."""

    reported_on: date
    position: str
    delivery_status: str
    delay_reason: str | None


class HandoverPack(BaseModel):
    """Everything a new owner needs to pick the recommendation up."""

    recommendation_id: str
    number: int
    text: str
    issued_on: date | None
    as_of: date
    status: Status
    closure: Closure | None
    target_date: date | None
    original_target_date: date | None
    target_date_revisions: int
    owners: list[OwnerPeriod]
    evidence: list[EvidenceItem]
    decisions: list[Decision]
    closure_pending: bool
    outstanding_asks: list[str]
    last_position: Position | None


class _Fold:
    """Mutable accumulator used only inside build_handover."""

    def __init__(self) -> None:
        self.number = 0
        self.text = ""
        self.issued_on: date | None = None
        self.owners: list[OwnerPeriod] = []
        self.evidence: list[EvidenceItem] = []
        self.decisions: list[Decision] = []
        self.target: TargetDateSet | None = None
        self.position: Position | None = None
        self.pending = False

    def apply(self, entry: HistoryEntry) -> None:
        data, on = entry.data, entry.effective_date
        if isinstance(data, RecommendationIssued):
            self.number, self.text, self.issued_on = data.number, data.text, on
        elif isinstance(data, OwnerAssigned):
            if self.owners:
                self.owners[-1].to_date = on
            self.owners.append(
                OwnerPeriod(
                    team=data.team,
                    team_name=data.team_name,
                    owner_role=data.owner_role,
                    from_date=on,
                    to_date=None,
                    assigned_by=entry.actor.name,
                    note=data.note,
                )
            )
        elif isinstance(data, TargetDateSet):
            self.target = data
        elif isinstance(data, ProgressReported):
            self.position = Position(
                reported_on=on,
                position=data.position,
                delivery_status=data.delivery_status,
                delay_reason=data.delay_reason,
            )
        elif isinstance(data, EvidenceSubmitted):
            self.evidence.append(
                EvidenceItem(
                    evidence_id=data.evidence_id,
                    submitted_on=on,
                    submitted_by=entry.actor.name,
                    summary=data.summary,
                    documents=[EvidenceDocument.of(d) for d in data.documents],
                    inspectorate_responses=[],
                )
            )
        elif isinstance(data, ClosureProposed):
            self.pending = True
        elif isinstance(data, InspectorateDecisionRecorded):
            self.pending = False
            self.decisions.append(
                Decision(decided_on=on, decision=data.decision, rationale=data.rationale)
            )
            for item in self.evidence:
                item.inspectorate_responses.append(
                    f"{on:%d %B %Y}: {DECISION_WORDS[data.decision]}: {data.rationale}"
                )


def _outstanding(fold: _Fold) -> list[str]:
    asks = []
    last = fold.decisions[-1] if fold.decisions else None
    if last and last.decision in ("kept_open", "more_evidence_requested"):
        asks.append(
            f"{DECISION_WORDS[last.decision]} on {last.decided_on:%d %B %Y}: {last.rationale}"
        )
    if fold.pending:
        asks.append("A closure proposal awaits the inspectorate's decision.")
    return asks


def build_handover(
    recommendation_id: str, history: list[HistoryEntry], *, as_of: date
) -> HandoverPack:
    """Fold a recommendation's history (as of a date) into its handover pack."""
    fold = _Fold()
    for entry in history:
        if entry.effective_date <= as_of:
            fold.apply(entry)
    last_decision = fold.decisions[-1].decision if fold.decisions else None
    target = fold.target
    return HandoverPack(
        recommendation_id=recommendation_id,
        number=fold.number,
        text=fold.text,
        issued_on=fold.issued_on,
        as_of=as_of,
        status=classify(
            as_of=as_of,
            last_decision=last_decision,
            delivery_status=fold.position.delivery_status if fold.position else None,
            target_date=target.target_date if target else None,
        ),
        closure=closure_of(last_decision),
        target_date=target.target_date if target else None,
        original_target_date=target.original_target_date if target else None,
        target_date_revisions=target.revision if target else 0,
        owners=fold.owners,
        evidence=fold.evidence,
        decisions=fold.decisions,
        closure_pending=fold.pending,
        outstanding_asks=_outstanding(fold),
        last_position=fold.position,
    )


def _document_line(d: EvidenceDocument, base_url: str) -> str:
    """One document as a Markdown list item: a link to download it, its kind, size and hash."""
    md = markdown_text
    if d.href is None:
        return f"  - document {md(d.name)} ({d.facts()}) sha256 {d.sha256}"
    return f"  - document [{md(d.name)}]({base_url}{d.href}) ({md(d.facts())}) sha256 {d.sha256}"


def handover_markdown(pack: HandoverPack, *, base_url: str = "") -> str:
    """The pack as Markdown, for a new owner to read or commit to a repository.

    Every stored value goes through `markdown_text` (`md`): text written by other teams must
    not become HTML, links, images or headings in whatever renders the file. Documents link to
    `base_url` + their API path (the CLI passes the API's address).
    """
    md = markdown_text
    lines = [
        f"# Handover: {md(pack.recommendation_id)}",
        "",
        f"**Recommendation {pack.number}.** {md(pack.text)}",
        "",
        f"- Status as at {pack.as_of:%d %B %Y}: {STATUS_WORDS[pack.status]}"
        + (f" ({md(pack.closure)})" if pack.closure else ""),
        f"- Target date: {pack.target_date or 'not set'}"
        + (
            f" (original {pack.original_target_date}, moved {pack.target_date_revisions} time(s))"
            if pack.target_date_revisions
            else ""
        ),
        "",
        "## Owners",
        "",
        "| team | role | from | to | assigned by |",
        "|---|---|---|---|---|",
        *(
            f"| {md(o.shown_team)} | {md(o.owner_role)} | {o.from_date} | {o.to_date or 'now'} "
            f"| {md(o.assigned_by)} |"
            for o in pack.owners
        ),
        "",
        "## Evidence and what the inspectorate said",
        "",
    ]
    for item in pack.evidence:
        lines.append(
            f"- **{md(item.evidence_id)}** ({item.submitted_on}, {md(item.submitted_by)}): "
            f"{md(item.summary)}"
        )
        lines += [_document_line(d, base_url) for d in item.documents]
        lines += [f"  - {md(response)}" for response in item.inspectorate_responses]
    if not pack.evidence:
        lines.append("None submitted.")
    lines += ["", "## Outstanding asks", ""]
    lines += [f"- {md(ask)}" for ask in pack.outstanding_asks] or ["None."]
    lines += ["", "## Last position reported", ""]
    if pack.last_position:
        p = pack.last_position
        status = p.delivery_status.replace("_", " ") + (
            f" ({p.delay_reason})" if p.delay_reason else ""
        )
        lines.append(f"{p.reported_on} — {status}: {md(p.position)}")
    else:
        lines.append("None reported.")
    return "\n".join(lines) + "\n"
