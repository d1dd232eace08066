"""Ed25519 keys and signatures as the log writes them; pure (no I/O).

One text form for everything signed in rectrack (commands, seals, keys registered in the log):
a key is named by its id, the first 32 hex characters of SHA-256 of its raw 32 bytes; public
keys and signatures travel as canonical standard base64 (padded), so each value has one text.
"""

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_ID_CHARS = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_ID = re.compile(r"[0-9a-f]{32}")


def key_id_of(public_key: bytes) -> str:
    """The id of a raw public key: the first 32 hex characters of SHA-256 of its 32 bytes."""
    return hashlib.sha256(public_key).hexdigest()[:KEY_ID_CHARS]


def encode_public_key(public_key: bytes) -> str:
    """The text form of a raw public key, as key files and the log hold it: standard base64."""
    return base64.b64encode(public_key).decode()


def decode_public_key(text: str) -> bytes:
    """The raw 32 bytes of a public key in its text form; ValueError naming what is wrong."""
    raw = strict_b64(text, "public key")
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes, not {len(raw)}")
    return raw


def decode_signature(text: str) -> bytes:
    """The raw 64 bytes of a signature in its text form; ValueError naming what is wrong."""
    raw = strict_b64(text, "signature")
    if len(raw) != SIGNATURE_BYTES:
        raise ValueError(f"an Ed25519 signature has {SIGNATURE_BYTES} bytes, not {len(raw)}")
    return raw


def strict_b64(text: str, what: str) -> bytes:
    """Canonical standard base64 decoded; ValueError saying which value is not."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError(f"the {what} is not standard base64: {exc}") from None
    # One text per value: what is stored and compared is the canonical encoding.
    if base64.b64encode(raw).decode() != text:
        raise ValueError(f"the {what} is not canonical base64 (standard alphabet, padded)")
    return raw


def public_key_of(private_key: Ed25519PrivateKey) -> bytes:
    """The raw 32 bytes of a private key's public key."""
    return private_key.public_key().public_bytes_raw()


def load_public_key(public_key: bytes) -> Ed25519PublicKey:
    """A public key object to verify with (callers that verify often keep it)."""
    return Ed25519PublicKey.from_public_bytes(public_key)


def verify(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether this is the key's signature of exactly these bytes."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
