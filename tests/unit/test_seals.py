"""Seals (events/seals.py) and the chain walk that checks them: pure, no I/O."""

import base64
import hashlib
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.chain import walk
from events.ed25519 import key_id_of
from events.integrity import digest, seal_document
from events.recommendation import OwnerAssigned
from events.registry import parse_event, parse_event_doc
from events.seals import (
    MAX_SEALED_HASHES,
    InvalidSeal,
    SealCheck,
    TrustedKeys,
    read_seal,
    seal_message,
    verified_seal,
    with_seal,
)
from events.topics import Message
from tests.histories import History
from tests.sealing import TEST_DECIDER, TEST_DECIDER_KEYS, sealed, sealed_group, untrusted_sealer

H1, H2, H3 = ("ab" * 32, "cd" * 32, "ef" * 32)


def history(recs: int = 2) -> History:
    h = History()
    for n in range(1, recs + 1):
        rid = h.rec(n)
        h.add(rid, "2024-02-01", OwnerAssigned(recommendation_id=rid, team="ppcw", owner_role="o"))
    return h


def doc_of(message: Message) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(message.value)
    return doc


def next_of(genuine: Message, team: str = "forged") -> dict[str, Any]:
    """The stream's next version, linked to its head and hashed as events/integrity.py does;
    a forgery unless a trusted decider key seals it."""
    doc = doc_of(genuine)
    head = doc.pop("hash")
    doc.pop("seal", None)
    data = {"recommendation_id": doc["stream_id"], "team": team, "owner_role": "o"}
    return seal_document(
        {**doc, "type": "OwnerAssigned", "stream_version": doc["stream_version"] + 1, "data": data},
        head,
    )


def renumbered(values: list[bytes], partition: int = 0) -> list[Message]:
    return [Message(partition, i, None, v) for i, v in enumerate(values)]


# -- the hash does not cover the seal ----------------------------------------------------------


def test_an_events_hash_covers_neither_its_hash_nor_its_seal() -> None:
    doc = doc_of(history().messages()[0])
    without = {k: v for k, v in doc.items() if k not in ("hash", "seal")}
    # As events/integrity.py hashed before seals existed: an unsealed event hashes the same.
    before = hashlib.sha256(orjson.dumps(without, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert digest(without) == before == doc["hash"]
    assert digest({**without, "seal": {"anything": [1, 2]}}) == before
    assert digest({**without, "data": {**without["data"], "text": "other"}}) != before


def test_a_sealed_event_parses_to_the_same_envelope_as_without_its_seal() -> None:
    message = history().messages()[0]
    doc = doc_of(message)
    assert "seal" in doc
    plain = orjson.dumps({k: v for k, v in doc.items() if k != "seal"})
    assert parse_event(message.value) == parse_event(plain)
    assert parse_event_doc(doc) == parse_event(plain)
    assert "seal" in doc  # the caller's document is left as it was


# -- building and verifying a seal ---------------------------------------------------------------


def test_a_seal_signs_exactly_the_documented_bytes_with_the_deciders_key() -> None:
    seal = TEST_DECIDER.seal(12, [H1, H2])
    assert seal.keys() == {"key_id", "hashes", "signature"}
    assert seal["hashes"] == [H1, H2]
    public = Ed25519PublicKey.from_public_bytes(TEST_DECIDER.public_key)
    assert seal["key_id"] == hashlib.sha256(TEST_DECIDER.public_key).hexdigest()[:32]
    assert seal["key_id"] == key_id_of(TEST_DECIDER.public_key)
    signed = b"rectrack-seal-v1\n12\n" + f"{H1}\n{H2}".encode()
    assert seal_message(12, [H1, H2]) == signed
    public.verify(base64.b64decode(seal["signature"]), signed)  # raises if it does not verify
    assert verified_seal(seal, H1, TEST_DECIDER_KEYS, 12, 0).hashes == (H1, H2)


def test_a_seal_verifies_only_on_the_partition_it_was_made_for() -> None:
    seal = TEST_DECIDER.seal(1, [H1])
    assert verified_seal(seal, H1, TEST_DECIDER_KEYS, 1, 7).hashes == (H1,)
    for elsewhere in (0, 2, 11):
        with pytest.raises(InvalidSeal, match="signature does not verify"):
            verified_seal(seal, H1, TEST_DECIDER_KEYS, elsewhere, 7)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: {**s, "hashes": [H1, H3]},  # another event listed
        lambda s: {**s, "hashes": [H1]},  # one left out
        lambda s: {**s, "hashes": [H1, H2, H3]},  # one added
    ],
)
def test_a_seal_whose_hashes_were_changed_does_not_verify(change: Any) -> None:
    seal = change(TEST_DECIDER.seal(0, [H1, H2]))
    with pytest.raises(InvalidSeal, match="signature does not verify"):
        verified_seal(seal, H1, TEST_DECIDER_KEYS, 0, 0)


def test_a_seal_counts_only_on_its_first_event_and_only_with_a_trusted_key() -> None:
    seal = TEST_DECIDER.seal(0, [H1, H2])
    with pytest.raises(InvalidSeal, match="first hash is not the hash of the event"):
        verified_seal(seal, H2, TEST_DECIDER_KEYS, 0, 0)
    stranger = untrusted_sealer()
    with pytest.raises(InvalidSeal, match=f"key {stranger.key_id}, which is not a trusted"):
        verified_seal(stranger.seal(0, [H1]), H1, TEST_DECIDER_KEYS, 0, 0)
    # The stranger's key id on the decider's signature: the trusted key of that id is looked
    # up, and the signature does not verify with it.
    impostor = {**TEST_DECIDER.seal(0, [H1]), "key_id": stranger.key_id}
    both = TrustedKeys(
        Ed25519PublicKey.from_public_bytes(k)
        for k in (TEST_DECIDER.public_key, stranger.public_key)
    )
    with pytest.raises(InvalidSeal, match="signature does not verify"):
        verified_seal(impostor, H1, both, 0, 0)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("seal", "not an object"),
        ({"key_id": "0" * 32, "hashes": [H1]}, "not an object of exactly"),
        ({**TEST_DECIDER.seal(0, [H1]), "extra": 1}, "not an object of exactly"),
        ({**TEST_DECIDER.seal(0, [H1]), "key_id": "A" * 32}, "key_id"),
        ({**TEST_DECIDER.seal(0, [H1]), "key_id": 7}, "key_id"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": []}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": H1}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": [H1 + "\n" + H2]}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": [H1.upper()]}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": [H1, 7]}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": [H1[:-1] + "é"]}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": [H1[:-1] + "g"]}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": [H1[:32], H1[32:] + "\n" + H2]}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "hashes": [H1] * (MAX_SEALED_HASHES + 1)}, "hashes"),
        ({**TEST_DECIDER.seal(0, [H1]), "signature": "not base64!"}, "signature is not standard"),
        ({**TEST_DECIDER.seal(0, [H1]), "signature": base64.b64encode(b"x" * 63).decode()}, "63"),
        ({**TEST_DECIDER.seal(0, [H1]), "signature": None}, "signature is not text"),
    ],
)
def test_a_malformed_seal_is_refused_saying_why(value: Any, why: str) -> None:
    with pytest.raises(InvalidSeal, match=why):
        read_seal(value)


def test_with_seal_adds_the_seal_and_keeps_the_canonical_bytes() -> None:
    message = history().messages(seal_every=1000)[1]  # not a carrier
    value = with_seal(message.value, TEST_DECIDER.seal(0, [doc_of(message)["hash"]]))
    assert value == orjson.dumps(orjson.loads(value), option=orjson.OPT_SORT_KEYS)
    assert digest(orjson.loads(value)) == doc_of(message)["hash"]


# -- the chain walk: what `rectrack verify` names -------------------------------------------------


def test_a_sealed_log_verifies_clean_whatever_the_seals_cover() -> None:
    for every in (1, 3, 1000):
        report = walk("t", history(3).messages(seal_every=every), keys=TEST_DECIDER_KEYS)
        assert report.clean and report.events == 6 and report.streams == 3


def test_the_walk_names_a_forgery_that_continues_its_chain_and_follows_the_genuine_one() -> None:
    genuine = history(1).messages(seal_every=1)
    unsealed = orjson.dumps(next_of(genuine[0], "unsealed"))
    foreign = sealed(orjson.dumps(next_of(genuine[0], "foreign")), untrusted_sealer())
    log = renumbered([genuine[0].value, unsealed, foreign, genuine[1].value])
    report = walk("t", log, keys=TEST_DECIDER_KEYS)
    assert not report.breaks and not report.unreadable
    found = {b.offset: b for b in report.unauthenticated}
    assert set(found) == {1, 2}
    assert all(b.stream_id == "audit-insp/r1" and b.topic == "t" for b in found.values())
    assert "in no seal signed by a trusted decider key on partition 0" in found[1].reason
    assert "which is not a trusted decider key" in found[2].reason
    # Neither moved the chain: the genuine version 2 after them continues it.
    assert report.streams == 1


def test_a_seal_authenticates_only_later_events_of_its_own_partition() -> None:
    h = history(1)
    first, second = (m.value for m in h.messages(seal_every=1000))  # first carries both hashes
    elsewhere = [Message(0, 0, None, first), Message(1, 0, None, second)]
    report = walk("t", elsewhere, keys=TEST_DECIDER_KEYS)
    assert [(b.partition, b.offset) for b in report.unauthenticated] == [(1, 0)]
    # The genuine carrier copied onto a partition read first: it verifies nothing there, and
    # the genuine events on their own partition stay authenticated.
    on_one = sealed_group([first, second], partition=1)
    genuine = [Message(1, offset, None, value) for offset, value in enumerate(on_one)]
    copied = Message(0, 0, None, on_one[0])
    report = walk("t", [copied, *genuine], keys=TEST_DECIDER_KEYS)
    assert [(b.partition, b.offset) for b in report.unauthenticated] == [(0, 0)]
    assert "signature does not verify" in report.unauthenticated[0].reason
    # A seal placed after the event it lists (a copy of the carrier later in the log).
    bare = orjson.dumps({k: v for k, v in orjson.loads(first).items() if k != "seal"})
    seal = orjson.loads(first)["seal"]
    late = renumbered([bare, orjson.dumps({**orjson.loads(bare), "seal": seal})])
    report = walk("t", late, keys=TEST_DECIDER_KEYS)
    assert [b.offset for b in report.unauthenticated] == [0]
    # The refused event moved no chain, so the sealed copy is version 1 of its stream.
    assert not report.breaks and report.streams == 1


def test_the_walk_names_unreadable_events_and_an_unreadable_genuine_one_keeps_its_chain() -> None:
    genuine = history(1).messages(seal_every=1)
    old = {k: v for k, v in doc_of(genuine[0]).items() if k not in ("hash", "seal")}
    old["data"] = {**old["data"], "retired_field": True}  # no model reads it any more
    unreadable = sealed(orjson.dumps(seal_document(old, None)))  # its decider sealed it
    after = sealed(orjson.dumps(next_of(Message(0, 1, None, unreadable), "ppcw")))
    log = renumbered([b"\xff not json", unreadable, after])
    report = walk("t", log, keys=TEST_DECIDER_KEYS)
    assert not report.breaks and not report.unauthenticated  # `after` continues the chain
    assert [(b.offset, b.stream_id) for b in report.unreadable] == [(0, None), (1, "audit-insp/r1")]
    assert "unreadable event" in report.unreadable[1].reason


def test_verify_from_an_offset_follows_earlier_seals_without_naming_earlier_events() -> None:
    genuine = history(2).messages(seal_every=1000)  # one seal, on offset 0, for all four
    forged = orjson.dumps(next_of(genuine[-1]))
    log = renumbered([*(m.value for m in genuine), forged])
    named = walk("t", log, keys=TEST_DECIDER_KEYS, from_offset=1)
    assert [b.offset for b in named.unauthenticated] == [4] and not named.breaks
    assert walk("t", log, keys=TEST_DECIDER_KEYS, from_offset=5).clean


# -- the decider's catch-up: SealCheck ------------------------------------------------------------


def test_seal_check_authenticates_each_sealed_event_once() -> None:
    values = sealed_group([m.value for m in history(1).messages(seal_every=1000)])
    check = SealCheck(TEST_DECIDER_KEYS)
    docs = [orjson.loads(v) for v in values]
    assert [check.refusal(d, 0, i) for i, d in enumerate(docs)] == [None, None]
    again = check.refusal(docs[1], 0, 2)  # the same event copied onto the log
    assert again is not None and "in no seal" in again
    forged = next_of(Message(0, 1, None, values[1]))
    assert check.refusal(forged, 0, 3) is not None
    altered = {**docs[1], "data": {**docs[1]["data"], "team": "other"}}
    assert "hash does not match" in (SealCheck(TEST_DECIDER_KEYS).refusal(altered, 0, 0) or "")
