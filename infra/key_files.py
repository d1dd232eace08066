"""Private key files: Ed25519 private keys in PKCS#8 PEM, mode 0600 in 0700 folders.

Several processes may start at once (`rectrack run` starts three) and each may need a key
first: a key is written to a private temporary file and linked into place, which fails for all
but one of them, and the others read the winner's.
"""

import contextlib
import os
from pathlib import Path
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from infra.private_files import read_private


class KeyFileError(RuntimeError):
    """A key file that cannot be used; the message says what to do (and holds no key)."""


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in this file, created (0600, folder 0700) if there is none."""
    if not path.exists():
        _create(path)
    return _read(path)


def _private_folders(folder: Path) -> None:
    """Make a folder and its missing parents, each 0700 (`mkdir(parents=True)` would give the
    parents the umask's mode)."""
    missing = [f for f in (folder, *folder.parents) if not f.exists()]
    for each in reversed(missing):
        each.mkdir(mode=0o700, exist_ok=True)


def write_new_file(path: Path, content: bytes, mode: int) -> None:
    """Write a file that did not exist, whole or not at all, never replacing one that does.

    Several processes may start at once (`rectrack run` starts three): each writes a private
    temporary file and links it into place, which fails for all but one, and the others read
    the winner's.
    """
    _private_folders(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid4().hex}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    write_new_file(path, pem, 0o600)


def _read(path: Path) -> Ed25519PrivateKey:
    pem = read_private(
        path,
        KeyFileError,
        "the signing key",
        "Run rectrack as the user who started the stack, with the same RECTRACK_HOME",
        exposed_hint=", and rotate the key if anyone else may have read it",
    )
    try:
        key = load_pem_private_key(pem, password=None)
    except (TypeError, ValueError):
        raise KeyFileError(f"{path} holds no unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a private key that is not Ed25519")
    return key
