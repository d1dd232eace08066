"""The decider's own key and the decider keys trusted to seal events, as files under
RECTRACK_HOME/keys (see `Settings.keys_dir`):

    keys/decider.key                      the decider's Ed25519 private key: PKCS#8 PEM, mode
                                          0600 in a 0700 folder, created at its first start
    keys/trusted-deciders/<key_id>.pub    standard base64 of the raw 32-byte public key of every
                                          decider key whose seals readers trust

The decider adds its own public key when it loads its private key, before it seals anything,
so a reader on the same RECTRACK_HOME always finds the key of any seal the decider wrote.
Rotating the key is deleting `decider.key` while the decider is stopped: it makes a new one at
its next start, and the old public key stays trusted for what it sealed. Deleting a `.pub` file
stops trusting that key everywhere in the log (a replay then refuses what it sealed).

`FileDeciderKeys` is today's source of `events.seals.DeciderKeys`; the key registry in the log
(decider keys registered as events) is meant to replace it behind the same Protocol.
"""

import contextlib
import os
import stat
from pathlib import Path
from uuid import uuid4

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from events.seals import (
    Sealer,
    decode_public_key,
    encode_public_key,
    key_id_of,
    raw_public_key,
)
from infra.settings import Settings

log = structlog.get_logger(__name__)

PUBLIC_KEY_SUFFIX = ".pub"


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


def _write_new(path: Path, content: bytes, mode: int) -> None:
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
    _write_new(path, pem, 0o600)


def _read(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            f"cannot read the signing key {path} ({exc.strerror or exc}): run rectrack as the "
            "user who started the stack, with the same RECTRACK_HOME"
        ) from None
    # Like ssh with a private key: a key others can read seals for whoever read it.
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); run "
            f"`chmod 600 {path}`, and rotate the key if anyone else may have read it"
        )
    try:
        key = load_pem_private_key(pem, password=None)
    except (TypeError, ValueError):
        raise KeyFileError(f"{path} holds no unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a private key that is not Ed25519")
    return key


def trust_public_key(directory: Path, public_key: bytes) -> Path:
    """Trust a decider's public key (raw 32 bytes) for seals: its `<key_id>.pub` file."""
    path = directory / f"{key_id_of(public_key)}{PUBLIC_KEY_SUFFIX}"
    if not path.exists():
        _write_new(path, f"{encode_public_key(public_key)}\n".encode(), 0o644)
    return path


def decider_sealer(settings: Settings) -> Sealer:
    """The decider's sealer: its private key (created at first start), its public key trusted."""
    sealer = Sealer(load_or_create_private_key(settings.decider_key_file))
    trust_public_key(settings.trusted_deciders_dir, sealer.public_key)
    log.info("decider_key_loaded", key_id=sealer.key_id)
    return sealer


class FileDeciderKeys:
    """The decider keys trusted by a folder of `<key_id>.pub` files, valid everywhere in the log.

    Read when first asked and again whenever a seal names a key it does not hold: a decider
    sharing the folder writes its key before its first seal, so a reader started before that
    key existed still finds it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: dict[str, Ed25519PublicKey] | None = None

    def public_key(self, key_id: str, partition: int, offset: int) -> Ed25519PublicKey | None:
        """The trusted key with this id (the folder is read again when it has none)."""
        if self._keys is None or key_id not in self._keys:
            self._keys = self._read()
        return self._keys.get(key_id)

    def key_ids(self) -> list[str]:
        """The ids of every trusted key, read afresh."""
        self._keys = self._read()
        return sorted(self._keys)

    def _read(self) -> dict[str, Ed25519PublicKey]:
        keys: dict[str, Ed25519PublicKey] = {}
        try:
            paths = sorted(self.directory.glob(f"*{PUBLIC_KEY_SUFFIX}"))
        except OSError:
            return keys
        for path in paths:
            try:
                key = decode_public_key(path.read_text())
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                log.error("trusted_key_unreadable", path=str(path), error=str(exc)[:200])
                continue
            key_id = key_id_of(raw_public_key(key))
            # The name is what an operator reads and deletes: it must be the key's own id.
            if path.name != f"{key_id}{PUBLIC_KEY_SUFFIX}":
                log.error("trusted_key_misnamed", path=str(path), key_id=key_id)
                continue
            keys[key_id] = key
        return keys


def trusted_decider_keys(settings: Settings) -> FileDeciderKeys:
    """The decider keys this RECTRACK_HOME trusts."""
    return FileDeciderKeys(settings.trusted_deciders_dir)
