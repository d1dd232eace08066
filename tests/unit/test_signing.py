"""The pure signing helpers (events/signing.py), the stack's key files and the verifier helper."""

import asyncio
import base64
import hashlib
import os
import stat
import threading
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.ed25519 import decode_public_key, encode_public_key, key_id_of
from events.envelope import CommandSignature
from events.signing import NotSigned, parse_signed_command, verify_command_signature
from infra.key_files import KeyFileError, load_or_create_private_key
from services.decider.verifier import BatchVerifier, Job, verify_all
from tests.signing import fixed_signer

KEY = fixed_signer(7)


def test_the_key_id_is_the_first_32_hex_characters_of_sha256_of_the_raw_public_key() -> None:
    assert KEY.key_id == hashlib.sha256(KEY.public_key).hexdigest()[:32]
    assert key_id_of(KEY.public_key) == KEY.key_id and len(KEY.key_id) == 32


def test_the_signature_covers_the_payload_bytes_exactly_as_sent() -> None:
    payload = '{"type":"SubmitEvidence", "data": {"summary": "Ünïcode\\n"}}'.encode()
    wire = orjson.loads(KEY.sign(payload))
    assert set(wire) == {"payload", "key_id", "signature"}
    assert wire["payload"].encode() == payload  # not re-encoded, not canonicalised
    # Any language can check it with nothing but the three strings and the public key.
    Ed25519PublicKey.from_public_bytes(KEY.public_key).verify(
        base64.b64decode(wire["signature"]), payload
    )
    signed = parse_signed_command(KEY.sign(payload))
    recorded = signed.as_recorded()
    assert recorded == CommandSignature(**wire)
    assert verify_command_signature(recorded, encode_public_key(KEY.public_key))
    assert verify_command_signature(recorded, KEY.public_key)


@pytest.mark.parametrize(
    "change",
    [
        {"payload": '{"type": "Other"}'},
        {"key_id": fixed_signer(8).key_id},
        {"signature": base64.b64encode(bytes(64)).decode()},
        {"signature": "not base64!"},
    ],
)
def test_a_recorded_signature_changed_in_any_part_does_not_verify(change: dict[str, str]) -> None:
    recorded = parse_signed_command(KEY.sign(b'{"type": "SubmitEvidence"}')).as_recorded()
    assert not verify_command_signature(recorded.model_copy(update=change), KEY.public_key)
    # Nor does the right signature against another key, or a key that is no key.
    assert not verify_command_signature(recorded, fixed_signer(8).public_key)
    assert not verify_command_signature(recorded, "AAAA")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xff not json", "not JSON"),
        (b'{"type": "SubmitEvidence", "data": {}}', "not a signed command"),
        (b"[]", "not a signed command"),
        (b'{"payload": "{}", "key_id": "ab", "signature": "AA==", "actor": {}}', "exactly"),
        (b'{"payload": {}, "key_id": "ab", "signature": "AA=="}', "must be strings"),
        (b'{"payload": "{}", "key_id": "AB", "signature": "AA=="}', "32 lower-case hex"),
    ],
)
def test_anything_but_the_three_strings_is_not_a_signed_command(raw: bytes, why: str) -> None:
    with pytest.raises(NotSigned, match=why):
        parse_signed_command(raw)


def test_a_signature_must_be_canonical_base64_of_64_bytes() -> None:
    wire = orjson.loads(KEY.sign(b"{}"))
    unpadded = wire["signature"].rstrip("=")
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(wire["signature"])).decode()
    short = base64.b64encode(bytes(63)).decode()
    for signature, why in ((unpadded, "base64"), (short, "64 bytes")):
        with pytest.raises(NotSigned, match=why):
            parse_signed_command(orjson.dumps({**wire, "signature": signature}))
    if urlsafe != wire["signature"]:  # only when the signature has a "+" or "/" in it
        with pytest.raises(NotSigned):
            parse_signed_command(orjson.dumps({**wire, "signature": urlsafe}))


def test_a_public_key_is_32_bytes_of_canonical_base64() -> None:
    assert decode_public_key(encode_public_key(KEY.public_key)) == KEY.public_key
    for text in ("AAAA", encode_public_key(KEY.public_key).rstrip("="), "é" * 44):
        with pytest.raises(ValueError):
            decode_public_key(text)


def test_a_signer_shows_its_key_id_and_never_its_private_key() -> None:
    assert repr(KEY) == f"Signer(key_id={KEY.key_id})"


# The stack's key files (services/decider/keys.py).


def test_a_key_file_is_created_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "gateway.key"
    first = load_or_create_private_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = load_or_create_private_key(path)
    assert again.public_key().public_bytes_raw() == first.public_key().public_bytes_raw()
    assert [p.name for p in path.parent.iterdir()] == ["gateway.key"]  # no temporary left


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "decider.key"
    found: list[bytes] = []

    def load() -> None:
        found.append(load_or_create_private_key(path).public_key().public_bytes_raw())

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len(set(found)) == 1


def test_a_key_file_others_can_read_or_that_holds_no_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.key"
    load_or_create_private_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="readable by other users") as refused:
        load_or_create_private_key(path)
    assert "PRIVATE KEY" not in str(refused.value)
    os.chmod(path, 0o600)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="no unencrypted PEM private key"):
        load_or_create_private_key(path)


# The helper process that verifies a batch ahead of the decider (services/decider/verifier.py).


async def verified_eventually(
    verifier: BatchVerifier, count: int, timeout: float = 30
) -> list[bool | None]:
    """The helper's answers for a batch, once it has answered every job (it never blocks)."""
    deadline = asyncio.get_running_loop().time() + timeout
    answers = [verifier.verified(i) for i in range(0)]
    while asyncio.get_running_loop().time() < deadline:
        verifier._read_answers()
        answers = [verifier._answer(i) for i in range(count)]
        if None not in answers:
            break
        await asyncio.sleep(0.05)
    return answers


async def test_the_helper_process_verifies_each_signature_against_its_own_key() -> None:
    other = fixed_signer(9)
    jobs = []
    for n in range(40):
        payload = orjson.dumps({"n": n, "text": "é" * n})
        signer = KEY if n % 2 else other
        signature = base64.b64decode(orjson.loads(signer.sign(payload))["signature"])
        if n % 5 == 0:
            payload += b" "  # signed bytes changed after signing
        jobs.append((signer.public_key if n % 7 else KEY.public_key, signature, payload))
    expected = [n % 5 != 0 and (n % 7 != 0 or n % 2 == 1) for n in range(40)]
    assert list(verify_all(jobs)) == expected  # the helper's own function, in this process
    verifier = BatchVerifier()
    await verifier.start()
    try:
        assert await verifier.submit(jobs)
        assert await verified_eventually(verifier, 40) == expected
        # The next batch's answers are its own: none of the previous one's is taken for it.
        assert await verifier.submit(list(reversed(jobs)))
        assert await verified_eventually(verifier, 40) == expected[::-1]
        assert not await verifier.submit(jobs[:3])  # a small batch: verified in the decider
        assert verifier.verified(0) is None
    finally:
        await verifier.stop()


def genuine_jobs(count: int) -> list[Job]:
    """`count` copies of one job whose signature verifies."""
    payload = b"{}"
    signature = base64.b64decode(orjson.loads(KEY.sign(payload))["signature"])
    return [(KEY.public_key, signature, payload)] * count


async def test_the_helper_skips_what_the_decider_has_passed_and_never_makes_it_wait() -> None:
    jobs = genuine_jobs(400)
    verifier = BatchVerifier()
    await verifier.start()
    try:
        assert await verifier.submit(jobs)
        # Straight to the end, at once: not answered yet, so "verify it yourself".
        assert verifier.verified(399) is None
        verifier.finish()
        await asyncio.sleep(0.5)
        verifier._read_answers()
        # Everything before the decider's position was skipped, so it answered (almost) nothing.
        assert sum(verifier._answer(i) is not None for i in range(400)) < 50
    finally:
        await verifier.stop()


async def test_a_helper_that_died_is_replaced_and_meanwhile_the_decider_verifies() -> None:
    jobs = genuine_jobs(20)
    verifier = BatchVerifier()
    await verifier.start()
    try:
        assert await verifier.submit(jobs)
        assert await verified_eventually(verifier, 20) == [True] * 20
        process = verifier._process
        assert process is not None
        process.kill()
        process.wait()
        for _ in range(3):  # it notices, answers nothing, and starts a new helper
            await verifier.submit(jobs)
            assert verifier.verified(0) is None or verifier._process is not process
        assert verifier._process is not process
        assert await verifier.submit(jobs)
        assert await verified_eventually(verifier, 20) == [True] * 20
    finally:
        await verifier.stop()


async def test_the_helper_exits_when_the_decider_is_gone() -> None:
    """Its input closes when the decider dies (SIGKILL too): it never waits for ever."""
    verifier = BatchVerifier()
    await verifier.start()
    process = verifier._process
    assert process is not None and process.stdin is not None
    process.stdin.close()  # what the kernel does for a decider that died
    assert await asyncio.wait_for(asyncio.to_thread(process.wait), 30) == 0
    await verifier.stop()
