"""Which roles may ever send which command type: the one table the decider and the API share.

The API refuses a command whose type the sender's role can never send, so it never reaches the
commands topic; `decide` checks the same table, because commands also arrive straight on Kafka.
Rules that depend on state (a contributor acts only for the team that owns the recommendation)
stay in `decide`.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import get_args

from events.names import id_key
from events.types import Role
from services.domain.commands import CommandType

ADMIN: frozenset[Role] = frozenset({"admin"})
INSPECTORATE: frozenset[Role] = frozenset({"admin", "inspector"})
# A contributor only for its own team's recommendations: a rule of state, checked in decide.
DELIVERY: frozenset[Role] = frozenset({"admin", "contributor"})
# Only an admin loads a file of commands written by others.
LOADERS: frozenset[Role] = ADMIN

ROLES_FOR: Mapping[str, frozenset[Role]] = MappingProxyType(
    {
        "PublishInspection": INSPECTORATE,
        "IssueRecommendation": INSPECTORATE,
        "AssignOwner": ADMIN,
        "SetTargetDate": DELIVERY,
        "ReportProgress": DELIVERY,
        "SubmitEvidence": DELIVERY,
        "ProposeClosure": DELIVERY,
        "RecordInspectorateDecision": INSPECTORATE,
        "RecordCommitteeUpdate": ADMIN,
        # Who may sign commands as whom: the keys of the log's registry (events/keys.py).
        "RegisterSigningKey": ADMIN,
        "RevokeSigningKey": ADMIN,
    }
)

# A command type added to the contract without a line here would be refused to everyone (and a
# line without a type is a typo): say so at import rather than at the first request.
_MISSING = set(get_args(CommandType)) ^ set(ROLES_FOR)
if _MISSING:  # pragma: no cover - a programming error caught by every test run
    raise RuntimeError(f"ROLES_FOR and CommandType differ in {sorted(_MISSING)}")


def refusal(role: str, command_type: str) -> str | None:
    """Why a role can never send this command type, or None when it may (state permitting)."""
    allowed = ROLES_FOR.get(command_type)
    if allowed is None:
        return f"{command_type} is not a command type"
    if role in allowed:
        return None
    return f"{command_type} needs role {' or '.join(sorted(allowed))}"


# Who may read an evidence document's bytes (GET /documents/{sha256}). Everyone with a token
# reads the history, which names each document and its hash; the documents themselves may hold
# personal or operational detail, so they go to the inspectorate (any team), admins, and the
# teams the evidence belongs to: the one that owns the recommendation now (a new owner inherits
# the evidence, not just its hashes) and the one that submitted it.
EVIDENCE_READERS: frozenset[Role] = INSPECTORATE


def may_read_evidence(
    role: str, team: str, *, owner_team: str | None, submitted_by_team: str
) -> bool:
    """Whether a token's holder (role, team) may read a document of this evidence.

    Teams compare by id, as ownership does (events/names.py): a token naming the team by its
    name or by its id reads the same documents."""
    teams = {id_key(t) for t in (owner_team, submitted_by_team) if t is not None}
    return role in EVIDENCE_READERS or id_key(team) in teams
