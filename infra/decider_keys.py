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

from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.ed25519 import decode_public_key, encode_public_key, key_id_of, load_public_key
from events.seals import Sealer
from infra.key_files import load_or_create_private_key, write_new_file
from infra.settings import Settings

log = structlog.get_logger(__name__)

PUBLIC_KEY_SUFFIX = ".pub"


def trust_public_key(directory: Path, public_key: bytes) -> Path:
    """Trust a decider's public key (raw 32 bytes) for seals: its `<key_id>.pub` file."""
    path = directory / f"{key_id_of(public_key)}{PUBLIC_KEY_SUFFIX}"
    if not path.exists():
        write_new_file(path, f"{encode_public_key(public_key)}\n".encode(), 0o644)
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
                raw = decode_public_key(path.read_text().strip())
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                log.error("trusted_key_unreadable", path=str(path), error=str(exc)[:200])
                continue
            key_id = key_id_of(raw)
            # The name is what an operator reads and deletes: it must be the key's own id.
            if path.name != f"{key_id}{PUBLIC_KEY_SUFFIX}":
                log.error("trusted_key_misnamed", path=str(path), key_id=key_id)
                continue
            keys[key_id] = load_public_key(raw)
        return keys


def trusted_decider_keys(settings: Settings) -> FileDeciderKeys:
    """The decider keys this RECTRACK_HOME trusts."""
    return FileDeciderKeys(settings.trusted_deciders_dir)
