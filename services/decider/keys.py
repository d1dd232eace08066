"""The stack's own signing keys under RECTRACK_HOME, and the decider's trust anchors.

`keys/gateway.key` signs every command the HTTP API and the CLI send (`CommandGateway`);
`keys/decider.key` is the decider's own, an anchor that may sign nothing but its own
registration: it signs nothing yet (signing events is issue 14's part 3). Both are Ed25519
private keys in PKCS#8 PEM, mode 0600 in a 0700 folder, created by whichever process needs
one first: the API, the decider and the CLI may start at once, so a
key is written to a private temporary file and linked into place, which fails for all but
one of them, and the others read the winner's.
"""

import contextlib
import os
import stat
from pathlib import Path
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from events.signing import Signer, decode_public_key
from events.streams import partition_key
from infra.settings import Settings
from services.domain.authentication import AnchorKind, anchor, self_registration
from services.domain.commands import dump_command
from services.domain.state import KeyState


class SigningKeyFileError(RuntimeError):
    """A key file that cannot be used; the message says what to do (and holds no key)."""


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in this file, created (0600) if there is none."""
    if not path.exists():
        _create(path)
    return _read(path)


def _create(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid4().hex}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        # Atomic, and never replaces a key another process made first.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyFileError(
            f"cannot read the signing key {path} ({exc.strerror or exc}): run rectrack as the "
            "user who started the stack, with the same RECTRACK_HOME"
        ) from None
    # Like ssh with a private key: a key others can read signs for whoever read it.
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyFileError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); run "
            f"`chmod 600 {path}`, and rotate the key if anyone else may have read it"
        )
    try:
        key = load_pem_private_key(pem, password=None)
    except (TypeError, ValueError):
        raise SigningKeyFileError(f"{path} holds no unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyFileError(f"{path} holds a private key that is not Ed25519")
    return key


def gateway_signer(settings: Settings) -> Signer:
    """The gateway's signer: the key every command of the API and the CLI is signed with."""
    return Signer(load_or_create_private_key(settings.gateway_key_file))


def decider_signer(settings: Settings) -> Signer:
    """The decider's own key."""
    return Signer(load_or_create_private_key(settings.decider_key_file))


def decider_anchors(settings: Settings) -> dict[str, KeyState]:
    """The keys the decider trusts by configuration, by key id.

    The gateway public keys of RECTRACK_GATEWAY_PUBLIC_KEYS, else this home's gateway key
    (created if missing, so the decider and the API of one home agree whichever starts
    first); and the decider's own key, which may sign nothing but its own registration.
    """
    try:
        gateways = [decode_public_key(text) for text in settings.gateway_public_keys]
    except ValueError as exc:
        raise SigningKeyFileError(f"RECTRACK_GATEWAY_PUBLIC_KEYS: {exc}") from None
    if not gateways:
        gateways = [gateway_signer(settings).public_key]
    anchors = [anchor(public_key, "gateway") for public_key in gateways]
    anchors.append(anchor(decider_signer(settings).public_key, "decider"))
    return {a.key_id: a for a in anchors}


def self_registration_message(signer: Signer, kind: AnchorKind) -> tuple[bytes, bytes]:
    """(key, value) of the command by which this anchor registers itself, signed by itself."""
    command = self_registration(signer.public_key, kind)
    return partition_key(command.stream_id), signer.sign(dump_command(command))
