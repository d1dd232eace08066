"""A team system's credentials file: its Kafka login and its command-signing key, one JSON file.

`rectrack principals create` writes it once (mode 0600, never over an existing file) and
`rectrack send` reads it. One JSON object of strings, exactly these keys:

    bootstrap_servers, security_protocol, sasl_mechanism, username, password  the Kafka login
    ssl_cafile   the CA that signs the broker's certificate (only when TLS is on)
    key_id       the signing key's id (events/ed25519.py), as each signed command names it
    signing_key  the Ed25519 private key as unencrypted PKCS#8 PEM text
                 ("-----BEGIN PRIVATE KEY-----" ...): OpenSSL (`openssl pkeyutl -sign -rawin
                 -inkey key.pem`), Node's `crypto.createPrivateKey`, Python's `cryptography`
                 read it as it is; Java's `KeyFactory.getInstance("Ed25519")` reads the base64
                 between the two PEM lines as a `PKCS8EncodedKeySpec`.

The username is both the Kafka principal and the name the signing key is registered to; its
consumer groups start with `username.`. Reading refuses a file others may read (like ssh with a
private key), a missing or unknown key, and a signing key whose id is not `key_id`; no message
ever holds the password or the private key.
"""

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from events.ed25519 import KEY_ID, key_id_of, public_key_of
from events.signing import Signer
from infra.kafka_security import KafkaCredentials
from infra.private_files import create_private

KAFKA_FIELDS = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "username", "password")
OPTIONAL_FIELDS = ("ssl_cafile",)
KEY_FIELDS = ("key_id", "signing_key")
FIELDS = frozenset((*KAFKA_FIELDS, *OPTIONAL_FIELDS, *KEY_FIELDS))
MAX_FILE_BYTES = 64 * 1024


class CredentialsFileError(ValueError):
    """A credentials file that cannot be used; the message names the file and the field (and
    never holds a secret)."""


def signing_key_pem(key: Ed25519PrivateKey) -> str:
    """The private key as the file holds it: unencrypted PKCS#8 PEM text."""
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")


@dataclass(frozen=True)
class TeamCredentials:
    """How a team system connects to Kafka and signs its commands."""

    kafka: KafkaCredentials
    signing_key: Ed25519PrivateKey = field(repr=False)

    @property
    def username(self) -> str:
        """The team's Kafka principal, also the name its signing key is registered to."""
        return self.kafka.username

    @property
    def key_id(self) -> str:
        """The id of the signing key."""
        return key_id_of(public_key_of(self.signing_key))

    def signer(self) -> Signer:
        """A signer of command payloads with this key."""
        return Signer(self.signing_key)

    def as_dict(self) -> dict[str, str]:
        """The fields of the file (`ssl_cafile` only when TLS is on)."""
        return {
            **self.kafka.as_dict(),
            "key_id": self.key_id,
            "signing_key": signing_key_pem(self.signing_key),
        }


def write_credentials_file(path: Path, credentials: TeamCredentials) -> None:
    """Write a new credentials file, mode 0600; FileExistsError if anything is at `path`."""
    create_private(path, orjson.dumps(credentials.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")


def _string(doc: dict[str, Any], name: str, where: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise CredentialsFileError(f"{where}: {name} must be a non-empty string")
    return value


def parse_credentials(doc: object, where: str = "the credentials") -> TeamCredentials:
    """The credentials a decoded file holds; CredentialsFileError naming the field at fault."""
    if not isinstance(doc, dict):
        raise CredentialsFileError(f"{where}: must be a JSON object")
    unknown = sorted(str(k) for k in doc.keys() - FIELDS)
    if unknown:
        raise CredentialsFileError(f"{where}: unknown field(s) {', '.join(unknown)}")
    kafka = {name: _string(doc, name, where) for name in KAFKA_FIELDS}
    cafile = _string(doc, "ssl_cafile", where) if "ssl_cafile" in doc else None
    key_id = _string(doc, "key_id", where)
    if KEY_ID.fullmatch(key_id) is None:
        raise CredentialsFileError(f"{where}: key_id must be 32 lower-case hex characters")
    pem = _string(doc, "signing_key", where)
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (TypeError, ValueError, UnicodeEncodeError):
        raise CredentialsFileError(
            f"{where}: signing_key holds no unencrypted PEM private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CredentialsFileError(f"{where}: signing_key is not an Ed25519 private key")
    credentials = TeamCredentials(KafkaCredentials(**kafka, ssl_cafile=cafile), key)
    if credentials.key_id != key_id:
        raise CredentialsFileError(
            f"{where}: key_id {key_id} is not the id of signing_key ({credentials.key_id})"
        )
    return credentials


def read_credentials_file(path: Path) -> TeamCredentials:
    """The credentials in a file only its owner may read."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise CredentialsFileError(f"{path} is not a file")
        raw = path.read_bytes()
    except OSError as exc:
        raise CredentialsFileError(
            f"cannot read the credentials file {path} ({exc.strerror or exc})"
        ) from None
    # Like ssh with a private key: a key others can read signs for whoever read it.
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsFileError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); run "
            f"`chmod 600 {path}`, and revoke the key if anyone else may have read it"
        )
    if len(raw) > MAX_FILE_BYTES:
        raise CredentialsFileError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CredentialsFileError(f"{path} is not JSON: {exc}") from None
    return parse_credentials(doc, str(path))
