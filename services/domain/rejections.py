"""Stable reason codes for rejected commands: clients and tests match on these strings."""

from enum import StrEnum


class Reason(StrEnum):
    """Why a command produced no event."""

    INVALID_COMMAND = "invalid_command"
    FORBIDDEN = "forbidden"
    VERSION_CONFLICT = "version_conflict"
    INSPECTION_NOT_FOUND = "inspection_not_found"
    INSPECTION_ALREADY_PUBLISHED = "inspection_already_published"
    RECOMMENDATION_NOT_FOUND = "recommendation_not_found"
    RECOMMENDATION_NUMBER_TAKEN = "recommendation_number_taken"
    RECOMMENDATION_CLOSED = "recommendation_closed"
    EFFECTIVE_DATE_IN_FUTURE = "effective_date_in_future"
    EFFECTIVE_DATE_BEFORE_PUBLICATION = "effective_date_before_publication"
    EFFECTIVE_DATE_OUT_OF_ORDER = "effective_date_out_of_order"
    EVIDENCE_NOT_FOUND = "evidence_not_found"
    EVIDENCE_ID_TAKEN = "evidence_id_taken"
    CLOSURE_ALREADY_PROPOSED = "closure_already_proposed"
    NO_CLOSURE_PROPOSED = "no_closure_proposed"
    COMMITTEE_UPDATE_EXISTS = "committee_update_exists"
    # The command id is taken by another sender's command or by another payload: see
    # services/domain/idempotency.py. Nothing was appended; resend with a new command id.
    COMMAND_ID_REUSED = "command_id_reused"
    # Not signed, a signature that does not verify, or a key the log does not know or has
    # revoked (services/domain/authentication.py). Dead-lettered; the outcome names no sender.
    UNAUTHENTICATED = "unauthenticated"
    # Signed by a team key whose payload names another actor (or a loader) than the key's
    # principal. The signature verified: the sender is known, the claim is refused.
    ACTOR_MISMATCH = "actor_mismatch"
    KEY_ALREADY_REGISTERED = "key_already_registered"
    KEY_NOT_FOUND = "key_not_found"
    KEY_ALREADY_REVOKED = "key_already_revoked"
