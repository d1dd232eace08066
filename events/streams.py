"""Stream ids and the partition key that keeps an inspection's streams together."""

from events.types import Kind

COMMITTEE_PREFIX = "committee:"
KEY_PREFIX = "key:"


def recommendation_id(inspection_id: str, kind: Kind, number: int) -> str:
    """The id of a recommendation: `{inspection_id}/r{n}` or `{inspection_id}/afd{n}`."""
    suffix = "r" if kind == "recommendation" else "afd"
    return f"{inspection_id}/{suffix}{number}"


def committee_stream_id(committee: str) -> str:
    """The stream id of a committee's reporting points."""
    return f"{COMMITTEE_PREFIX}{committee}"


def key_stream_id(key_id: str) -> str:
    """The stream id of a signing key: its registration and revocation.

    Holds no "/", so `partition_key` keys it by the whole id and `inspection_of` gives None.
    """
    return f"{KEY_PREFIX}{key_id}"


def partition_key(stream_id: str) -> bytes:
    """Key for commands and events: the inspection id, so one decider sees all of an inspection."""
    return stream_id.split("/", 1)[0].encode()


def inspection_of(stream_id: str) -> str | None:
    """The inspection a recommendation stream belongs to (None for other streams)."""
    head, sep, _ = stream_id.partition("/")
    return head if sep else None
