"""Signed commands: Ed25519 over the exact bytes of a command's payload; pure (no I/O).

A command on the commands topic is one UTF-8 JSON object with three strings:

    {"payload": "<the command's JSON document, as a string>",
     "key_id": "<first 32 hex characters of SHA-256 of the raw 32-byte public key>",
     "signature": "<standard base64 (with padding) of the Ed25519 signature>"}

The signature covers the UTF-8 bytes of `payload` exactly as sent, so a client in any language
signs the bytes it is about to embed and no canonical JSON has to be agreed on. The event a
command becomes keeps the three values (`Envelope.command_signature`), so anyone holding the
log can verify, years later, that the key registered in the log signed that payload.
"""

import base64
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import AfterValidator, StringConstraints

from events.ed25519 import (
    KEY_ID,
    KEY_ID_CHARS,
    SIGNATURE_BYTES,
    decode_public_key,
    key_id_of,
    load_public_key,
    public_key_of,
    strict_b64,
    verify,
)
from events.envelope import CommandSignature

# A bound before the outer JSON is even parsed. The payload's own bound (256 KiB) is the
# command parser's; its JSON escaping may make the wrapped string several times longer.
MAX_SIGNED_COMMAND_BYTES = 2 * 1024 * 1024
WIRE_FIELDS = frozenset({"payload", "key_id", "signature"})

KeyKind = Literal["team", "gateway", "decider"]
"""What a key may do: a team key acts as its principal only; a gateway key may assert any
actor (the HTTP API and the CLI, which authenticate people themselves); a decider key signs
no command but its own registration (it is for the decider's own writes)."""

KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class NotSigned(ValueError):
    """Bytes on the commands topic that are not a well-formed signed command; says why."""


def _public_key_text(value: str) -> str:
    decode_public_key(value)
    return value


PublicKeyText = Annotated[str, AfterValidator(_public_key_text)]
"""An Ed25519 public key as standard base64 of its raw 32 bytes."""


@dataclass(frozen=True, slots=True)
class SignedCommand:
    """A signed command as read from the topic: payload, the signing key's id, raw signature."""

    payload: str
    key_id: str
    signature: bytes

    def as_recorded(self) -> CommandSignature:
        """The three values an event keeps so that anyone can verify it later."""
        return CommandSignature(
            key_id=self.key_id,
            payload=self.payload,
            signature=base64.b64encode(self.signature).decode(),
        )


class Signer:
    """Signs command payloads with one private key (the gateway's, a team's, a test's)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = public_key_of(private_key)
        self.key_id = key_id_of(self.public_key)

    def __repr__(self) -> str:  # never the private key, in a log or a traceback
        return f"Signer(key_id={self.key_id})"

    def sign(self, payload: bytes) -> bytes:
        """The wire bytes of a signed command whose payload is this UTF-8 JSON document."""
        signature = self._private_key.sign(payload)
        return orjson.dumps(
            {
                "payload": payload.decode("utf-8"),
                "key_id": self.key_id,
                "signature": base64.b64encode(signature).decode(),
            }
        )


def parse_signed_command(raw: bytes) -> SignedCommand:
    """The signed command these bytes hold; NotSigned saying why they hold none.

    Exactly the three wire fields, each a string: anything else (an unsigned command, a
    signature beside the command's own fields) is not a signed command.
    """
    if len(raw) > MAX_SIGNED_COMMAND_BYTES:
        raise NotSigned(f"larger than {MAX_SIGNED_COMMAND_BYTES} bytes")
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise NotSigned(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.keys() != WIRE_FIELDS:
        raise NotSigned(
            "not a signed command: expected a JSON object with exactly "
            '"payload", "key_id" and "signature"'
        )
    payload, key_id, signature = doc["payload"], doc["key_id"], doc["signature"]
    if not (isinstance(payload, str) and isinstance(key_id, str) and isinstance(signature, str)):
        raise NotSigned("payload, key_id and signature must be strings")
    if KEY_ID.fullmatch(key_id) is None:
        raise NotSigned(f"key_id must be {KEY_ID_CHARS} lower-case hex characters")
    try:
        raw_signature = strict_b64(signature, "signature")
    except ValueError as exc:
        raise NotSigned(str(exc)) from None
    if len(raw_signature) != SIGNATURE_BYTES:
        raise NotSigned(f"an Ed25519 signature has {SIGNATURE_BYTES} bytes")
    return SignedCommand(payload, key_id, raw_signature)


def verify_command_signature(recorded: CommandSignature, public_key: str | bytes) -> bool:
    """Whether an event's recorded command signature is this public key's, over its payload.

    `public_key` as the key's registration records it (base64) or raw. The key id must be
    the key's own as well: a signature proves nothing about a key it does not name.
    """
    try:
        raw = decode_public_key(public_key) if isinstance(public_key, str) else public_key
        signature = strict_b64(recorded.signature, "signature")
        key = load_public_key(raw)
    except ValueError:
        return False
    if key_id_of(raw) != recorded.key_id:
        return False
    return verify(key, signature, recorded.payload.encode("utf-8"))
