"""Tamper evidence: each event's hash covers its canonical encoding and its stream's previous hash.

A stream's events form a chain (prev_hash -> hash), so altering, inserting or removing an event
anywhere breaks the chain from that point on.
"""

import hashlib
from typing import Any

import orjson

from events.envelope import Envelope

HASH_FIELD = "hash"
# The decider's signed seal (events/seals.py) rides on the first event of each of its batches on
# a partition. It signs hashes, so no hash can cover it; an event without one hashes as before.
SEAL_FIELD = "seal"


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes a hash covers: the event document without its own hash and seal, keys sorted."""
    # A copy and two pops: a third of the time of a filtering comprehension, once per event.
    covered = dict(doc)
    covered.pop(HASH_FIELD, None)
    covered.pop(SEAL_FIELD, None)
    return orjson.dumps(covered, option=orjson.OPT_SORT_KEYS)


def digest(doc: dict[str, Any]) -> str:
    """SHA-256 of an event document's canonical encoding."""
    return hashlib.sha256(canonical(doc)).hexdigest()


def seal_document(doc: dict[str, Any], prev_hash: str | None) -> dict[str, Any]:
    """An event document (the envelope dumped in JSON mode) linked and carrying its hash."""
    linked = {**doc, "prev_hash": prev_hash}
    linked[HASH_FIELD] = digest(linked)
    return linked


def seal(envelope: Envelope, prev_hash: str | None) -> Envelope:
    """The envelope linked to its stream's previous event and carrying its own hash."""
    sealed = seal_document(envelope.model_dump(mode="json"), prev_hash)
    return envelope.model_copy(update={"prev_hash": prev_hash, HASH_FIELD: sealed[HASH_FIELD]})


def chain_break(doc: dict[str, Any], expected_prev: str | None) -> str | None:
    """Why an event as stored does not verify, or None when it does."""
    if doc.get(HASH_FIELD) != digest(doc):
        return "hash does not match the event's content"
    if doc.get("prev_hash") != expected_prev:
        return "prev_hash does not match the previous event of its stream"
    return None
