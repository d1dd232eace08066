"""What a signed-in person may do to a recommendation from the browser: the forms it shows.

The same rules as the decider's, read from the same table (services/domain/permissions.py),
plus the one rule of state `decide` adds: a contributor acts only on a recommendation their
team owns. The pages show only these forms, and every form's POST checks them again before its
command is sent (the decider then judges it as it judges any command).
"""

from dataclasses import dataclass

from events.envelope import Actor
from projections.recommendations.handover import HandoverPack
from services.domain.permissions import refusal


@dataclass(frozen=True)
class Action:
    """One form on a recommendation: its path segment, command type and link text."""

    slug: str
    command_type: str
    label: str


ACTIONS: tuple[Action, ...] = (
    Action("progress", "ReportProgress", "Report progress"),
    Action("evidence", "SubmitEvidence", "Submit evidence"),
    Action("closure", "ProposeClosure", "Propose closure"),
    Action("target-date", "SetTargetDate", "Set the target date"),
    Action("decision", "RecordInspectorateDecision", "Record the inspectorate’s decision"),
    Action("owner", "AssignOwner", "Assign an owner"),
)
BY_SLUG = {a.slug: a for a in ACTIONS}
# Commands `decide` allows a contributor only for the owning team (_owned_recommendation).
OWNING_TEAM_ONLY = frozenset(
    {"ReportProgress", "SubmitEvidence", "ProposeClosure", "SetTargetDate"}
)


def owner_team(pack: HandoverPack) -> str | None:
    """The team that owns the recommendation now."""
    return pack.owners[-1].team if pack.owners and pack.owners[-1].to_date is None else None


def may(actor: Actor | None, command_type: str, pack: HandoverPack) -> bool:
    """Whether this person may send this command about this recommendation (as far as the read
    model knows: the decider has the last word)."""
    if actor is None or pack.status == "closed" or refusal(actor.role, command_type):
        return False
    if command_type in OWNING_TEAM_ONLY and actor.role == "contributor":
        return actor.team == owner_team(pack)
    return True


def available(actor: Actor | None, pack: HandoverPack) -> list[Action]:
    """The forms this person gets on this recommendation, in the order the page lists them."""
    found = []
    for action in ACTIONS:
        if not may(actor, action.command_type, pack):
            continue
        # Closure is proposed citing evidence, once at a time.
        if action.slug == "closure" and (not pack.evidence or pack.closure_pending):
            continue
        found.append(action)
    return found


def may_publish(actor: Actor | None) -> bool:
    """Publish inspections and issue recommendations (the inspectorate's and admins')."""
    return actor is not None and refusal(actor.role, "PublishInspection") is None


def may_record_committee_update(actor: Actor | None) -> bool:
    """Record a committee's reporting point (admins)."""
    return actor is not None and refusal(actor.role, "RecordCommitteeUpdate") is None
