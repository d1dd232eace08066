"""Seals: the decider's Ed25519 signature over the hashes of the events it appends; pure.

An unkeyed hash chain shows alteration only to someone who cannot recompute it, and anyone can
compute a hash. A seal is what only a decider key can make. For each batch of commands the
decider decides, and each events partition the batch appends to, the batch's first event on
that partition carries, beside its hash,

    "seal": {"key_id": "<32 hex characters>",
             "hashes": ["<this event's hash>", "<the next event's of this batch here>", ...],
             "signature": "<standard base64 of the 64-byte Ed25519 signature>"}

and the signature covers the ASCII bytes "rectrack-seal-v1\\n", the partition's number in
decimal, "\\n", then the hashes joined with "\\n". The partition is signed so that a seal
authenticates only where the decider put it: copied onto another partition it verifies
nothing. The seal is outside what the event's hash covers (`events/integrity.py`) and outside
the envelope model (`events/registry.py` drops it when parsing), so readers that ignore it read
events as before.

An event is authenticated when its hash is listed by a valid seal met on the same partition at
or before its offset. A seal is valid when it is well formed, its first hash is its own event's
and its signature verifies with a decider key trusted at its place in the log. "At or before,
on the same partition" makes authentication a function of the log alone, never of how a reader
cuts the log into batches, so the projector's paths, a replay and `rectrack verify` agree.

One signature per batch and partition, as Certificate Transparency signs one tree head over
many entries: Ed25519 signs in about 28 µs and verifies in about 90 µs, shared by all the events
a seal lists, where a signature per event would cost the projector most of its throughput.
"""

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from events.ed25519 import KEY_ID, SIGNATURE_BYTES, key_id_of, public_key_of, strict_b64
from events.integrity import HASH_FIELD, SEAL_FIELD, digest

SEAL_CONTEXT = b"rectrack-seal-v1\n"
HASH_CHARS = 64
# A decider batch holds at most a few hundred commands; a bound keeps a hostile seal from
# costing a reader more than its own size in work.
MAX_SEALED_HASHES = 10_000
SEAL_KEYS = frozenset({"key_id", "hashes", "signature"})
UNAUTHENTICATED = "not authenticated by a decider key"


class InvalidSeal(ValueError):
    """A seal that authenticates nothing; the message says why."""


def seal_message(partition: int, hashes: Sequence[str]) -> bytes:
    """The exact bytes a seal's signature covers, for a seal on this partition."""
    return _signed(partition, "\n".join(hashes).encode("ascii"))


def _signed(partition: int, joined_hashes: bytes) -> bytes:
    return b"%s%d\n%s" % (SEAL_CONTEXT, partition, joined_hashes)


class DeciderKeys(Protocol):
    """The decider keys a reader trusts: the seam between seals and wherever keys are kept.

    Today a folder of public key files (`infra/decider_keys.py`); later the key registry in the
    log. `partition` and `offset` say where on the events topic the seal stands, so a source
    that knows when a key was registered or revoked can answer for that place.
    """

    def public_key(self, key_id: str, partition: int, offset: int) -> Ed25519PublicKey | None:
        """The trusted decider key with this id for a seal at this place, or None."""
        ...


class TrustedKeys:
    """A fixed set of trusted decider keys, valid everywhere in the log."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys = {key_id_of(k.public_bytes_raw()): k for k in keys}

    def public_key(self, key_id: str, partition: int, offset: int) -> Ed25519PublicKey | None:
        """The key with this id, wherever the seal stands."""
        return self._keys.get(key_id)

    def __len__(self) -> int:
        return len(self._keys)


class Sealer:
    """Signs seals with one decider private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = public_key_of(private_key)
        self.key_id = key_id_of(self.public_key)

    def __repr__(self) -> str:  # never the private key, in a log or a traceback
        return f"Sealer(key_id={self.key_id})"

    def seal(self, partition: int, hashes: Sequence[str]) -> dict[str, Any]:
        """The seal document over these event hashes, in their log order on this partition."""
        signature = self._private_key.sign(seal_message(partition, hashes))
        return {
            "key_id": self.key_id,
            "hashes": list(hashes),
            "signature": base64.b64encode(signature).decode(),
        }


def with_seal(value: bytes, seal: dict[str, Any]) -> bytes:
    """An event's canonical JSON bytes with a seal added (its hash is unchanged)."""
    doc = orjson.loads(value)
    doc[SEAL_FIELD] = seal
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class Seal:
    """A well-formed seal, not yet verified."""

    key_id: str
    hashes: tuple[str, ...]
    signature: bytes
    joined: bytes  # the hashes as the signature covers them: "\n".join(hashes) in ASCII


def read_seal(value: Any) -> Seal:
    """The seal a document's `seal` field holds; InvalidSeal when it is not well formed."""
    if not isinstance(value, dict) or value.keys() != SEAL_KEYS:
        raise InvalidSeal('it is not an object of exactly "key_id", "hashes" and "signature"')
    key_id, hashes, signature = value["key_id"], value["hashes"], value["signature"]
    if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        raise InvalidSeal("its key_id is not 32 lowercase hex characters")
    if not isinstance(hashes, list) or not 0 < len(hashes) <= MAX_SEALED_HASHES:
        raise InvalidSeal(f"its hashes are not a list of 1 to {MAX_SEALED_HASHES} hashes")
    if not _hex_lines(joined := _joined(hashes), len(hashes)):
        raise InvalidSeal("its hashes are not all 64 lowercase hex characters")
    if not isinstance(signature, str):
        raise InvalidSeal("its signature is not text")
    try:
        raw = strict_b64(signature, "signature")
    except ValueError as exc:
        raise InvalidSeal(f"its {exc}") from None
    if len(raw) != SIGNATURE_BYTES:
        raise InvalidSeal(f"its signature has {len(raw)} bytes, not {SIGNATURE_BYTES}")
    return Seal(key_id, tuple(hashes), raw, joined)


def _joined(hashes: list[Any]) -> bytes:
    """The hashes joined as they are signed, or b"" when they are not all ASCII text."""
    try:
        text = "\n".join(hashes)
    except TypeError:
        return b""
    return text.encode("ascii") if text.isascii() else b""


def _hex_lines(joined: bytes, count: int) -> bool:
    """Whether these bytes are `count` lines of 64 lowercase hex characters, "\n" between.

    Checked all at once (lengths, where the newlines are and how many, which bytes occur): a
    quarter of the time of a regular expression, for the whole of a seal.
    """
    return (
        len(joined) == (HASH_CHARS + 1) * count - 1
        and joined[HASH_CHARS :: HASH_CHARS + 1] == b"\n" * (count - 1)
        and joined.count(b"\n") == count - 1
        and not joined.translate(None, b"0123456789abcdef\n")
    )


def verified_seal(
    value: Any, carrier_hash: object, keys: DeciderKeys, partition: int, offset: int
) -> Seal:
    """The seal carried by the event at (partition, offset) whose hash is `carrier_hash`,
    verified; InvalidSeal saying why it authenticates nothing.

    `carrier_hash` must be the hash of the carrier's content (computed, or stored and checked
    by the chain): a seal counts only on the event it was made for.
    """
    seal = read_seal(value)
    if seal.hashes[0] != carrier_hash:
        raise InvalidSeal("its first hash is not the hash of the event that carries it")
    key = keys.public_key(seal.key_id, partition, offset)
    if key is None:
        raise InvalidSeal(f"it is signed by key {seal.key_id}, which is not a trusted decider key")
    try:
        key.verify(seal.signature, _signed(partition, seal.joined))
    except InvalidSignature:
        raise InvalidSeal(f"its signature does not verify with decider key {seal.key_id}") from None
    return seal


@dataclass(frozen=True, slots=True)
class SealedAt:
    """Where the seal listing a hash stands, and whose key signed it."""

    key_id: str
    partition: int
    offset: int

    def covers(self, partition: int, offset: int) -> bool:
        """Whether this seal authenticates an event at this place (same partition, not after)."""
        return self.partition == partition and self.offset <= offset


class SealBook:
    """Hashes listed by verified seals, each with the first seal that listed it.

    Keyed by hash alone: a seal signs its partition, so valid seals list a hash on one
    partition only, and partitions are read in offset order, so the first is the earliest.
    """

    def __init__(self) -> None:
        self.sealed: dict[str, SealedAt] = {}

    def add(self, seal: Seal, partition: int, offset: int) -> None:
        """Record a verified seal's hashes (a hash listed before keeps its first seal)."""
        at = SealedAt(seal.key_id, partition, offset)
        for h in seal.hashes:
            self.sealed.setdefault(h, at)

    def authenticates(self, event_hash: str, partition: int, offset: int) -> bool:
        """Whether a recorded seal authenticates the event with this hash at this place."""
        at = self.sealed.get(event_hash)
        return at is not None and at.covers(partition, offset)


def unauthenticated_reason(own_seal: InvalidSeal | None, partition: int) -> str:
    """Why an event is not authenticated: its own seal's fault, or no seal lists it."""
    if own_seal is not None:
        return f"{UNAUTHENTICATED}: its seal is refused: {own_seal}"
    return (
        f"{UNAUTHENTICATED}: its hash is in no seal signed by a trusted decider key "
        f"on partition {partition} at or before it"
    )


class SealCheck:
    """Authenticates events read in log order, holding only the sealed hashes not yet met.

    For a reader that folds the log into memory (the decider's catch-up): each hash is taken
    when its event is met, so memory holds one decider batch's hashes, not the log's, and a
    copy of an event met already is not authenticated again.
    """

    def __init__(self, keys: DeciderKeys) -> None:
        self.keys = keys
        self._pending: dict[str, SealedAt] = {}

    def refusal(self, doc: Any, partition: int, offset: int) -> str | None:
        """Why the decoded event at this place is not authenticated, or None when it is."""
        if not isinstance(doc, dict):
            return f"{UNAUTHENTICATED}: not an event"
        try:
            own_hash = digest(doc)
        except TypeError:  # orjson cannot encode it again: no decider wrote it
            return f"{UNAUTHENTICATED}: it cannot be hashed"
        if doc.get(HASH_FIELD) != own_hash:
            return f"{UNAUTHENTICATED}: its hash does not match its content"
        own_seal = None
        if SEAL_FIELD in doc:
            try:
                seal = verified_seal(doc[SEAL_FIELD], own_hash, self.keys, partition, offset)
            except InvalidSeal as exc:
                own_seal = exc
            else:
                sealed_here = SealedAt(seal.key_id, partition, offset)
                for h in seal.hashes:
                    self._pending.setdefault(h, sealed_here)
        at = self._pending.get(own_hash)
        if at is None or not at.covers(partition, offset):
            return unauthenticated_reason(own_seal, partition)
        del self._pending[own_hash]
        return None
