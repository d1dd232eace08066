"""A refused command in plain words, beside the form field it concerns.

Two kinds of refusal reach a form: the command's own validation (`InvalidCommand`, naming
fields such as `data.position`) and the decider's rejection (a stable reason code from
services/domain/rejections.py, with a detail). Both become `{field: sentence}`, where the
field is the form's input of that name, or "(form)" for what concerns the form as a whole.
Pure, so every reason's words are tested without a browser.
"""

from collections.abc import Mapping

from services.domain.rejections import Reason

FORM = "(form)"

# What the decider's reasons mean to the person at the form, and which field each concerns
# (per command type where it differs; otherwise the form as a whole).
REASON_WORDS: Mapping[str, str] = {
    Reason.FORBIDDEN: "You cannot do this",
    Reason.VERSION_CONFLICT: "Someone else changed this meanwhile: check the page and try again",
    Reason.INSPECTION_NOT_FOUND: "There is no inspection with this id",
    Reason.INSPECTION_ALREADY_PUBLISHED: "An inspection with this id already exists: choose "
    "another id",
    Reason.RECOMMENDATION_NOT_FOUND: "There is no such recommendation",
    Reason.RECOMMENDATION_NUMBER_TAKEN: "A recommendation with this number already exists",
    Reason.RECOMMENDATION_CLOSED: "This recommendation is closed, so it can only be read",
    Reason.EFFECTIVE_DATE_IN_FUTURE: "The date this takes effect cannot be in the future",
    Reason.EFFECTIVE_DATE_BEFORE_PUBLICATION: "This cannot take effect before the inspection "
    "was published",
    Reason.EFFECTIVE_DATE_OUT_OF_ORDER: "Something later has already been recorded for this "
    "recommendation",
    Reason.EVIDENCE_NOT_FOUND: "Choose evidence that has been submitted for this recommendation",
    Reason.EVIDENCE_ID_TAKEN: "Evidence with this reference was already submitted: choose "
    "another reference",
    Reason.CLOSURE_ALREADY_PROPOSED: "Closure has already been proposed and awaits the "
    "inspectorate’s decision",
    Reason.NO_CLOSURE_PROPOSED: "It can be closed only after its owners have proposed closure: "
    "choose another decision",
    Reason.COMMITTEE_UPDATE_EXISTS: "This committee already has an update for that meeting date",
    Reason.COMMAND_ID_REUSED: "This was sent before with different content: send the form again",
}

REASON_FIELDS: Mapping[str, Mapping[str, str]] = {
    "PublishInspection": {
        Reason.INSPECTION_ALREADY_PUBLISHED: "inspection_id",
        Reason.EFFECTIVE_DATE_BEFORE_PUBLICATION: "published_on",
    },
    "IssueRecommendation": {Reason.RECOMMENDATION_NUMBER_TAKEN: "texts"},
    "SubmitEvidence": {Reason.EVIDENCE_ID_TAKEN: "evidence_id"},
    "ProposeClosure": {Reason.EVIDENCE_NOT_FOUND: "evidence_ids"},
    "RecordInspectorateDecision": {Reason.NO_CLOSURE_PROPOSED: "decision"},
    "RecordCommitteeUpdate": {Reason.COMMITTEE_UPDATE_EXISTS: "meeting_date"},
}


def rejection_errors(command_type: str, reason: str | None, detail: str | None) -> dict[str, str]:
    """The decider's rejection as `{field: sentence}`."""
    words = REASON_WORDS.get(reason or "")
    if words is None:
        words = f"The service refused this: {detail or reason or 'no reason given'}"
    elif reason == Reason.FORBIDDEN and detail:
        words = f"{words}: {detail}"
    field = REASON_FIELDS.get(command_type, {}).get(reason or "", FORM)
    return {field: words}


def validation_errors(
    errors: list[dict[str, str]], labels: Mapping[str, str], fields: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`InvalidCommand.errors` as `{field: sentence}`: `data.position` is the form's `position`,
    `data.documents.0.name` its `documents`; `fields` renames a command field to a form field.
    A field the form does not have is the form's."""
    found: dict[str, str] = {}
    for error in errors:
        path = error["field"].split(".")
        name = path[1] if path[0] == "data" and len(path) > 1 else FORM
        name = (fields or {}).get(name, name)
        if name not in labels:
            name = FORM
        reason = error["reason"]
        sentence = reason[:1].upper() + reason[1:]
        if name != FORM:
            sentence = f"{labels[name]}: {reason[:1].lower()}{reason[1:]}"
        found.setdefault(name, sentence)
    return found
