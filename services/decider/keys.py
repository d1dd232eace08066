"""The stack's own command-signing key and the decider's trust anchors.

`keys/gateway.key` signs every command the HTTP API and the CLI send (`CommandGateway`). The
decider's own key (`keys/decider.key`, infra/decider_keys.py) seals the events it appends; as
an anchor it may sign no command but its own registration. Key files: infra/key_files.py.
"""

from events.ed25519 import decode_public_key
from events.signing import Signer
from events.streams import partition_key
from infra.key_files import KeyFileError, load_or_create_private_key
from infra.settings import Settings
from services.domain.authentication import AnchorKind, anchor, self_registration
from services.domain.commands import dump_command
from services.domain.state import KeyState


def gateway_signer(settings: Settings) -> Signer:
    """The gateway's signer: the key every command of the API and the CLI is signed with."""
    return Signer(load_or_create_private_key(settings.gateway_key_file))


def decider_anchors(settings: Settings, decider_public_key: bytes) -> dict[str, KeyState]:
    """The keys the decider trusts by configuration, by key id.

    The gateway public keys of RECTRACK_GATEWAY_PUBLIC_KEYS, else this home's gateway key
    (created if missing, so the decider and the API of one home agree whichever starts
    first); and the decider's own key, which may sign nothing but its own registration.
    """
    try:
        gateways = [decode_public_key(text) for text in settings.gateway_public_keys]
    except ValueError as exc:
        raise KeyFileError(f"RECTRACK_GATEWAY_PUBLIC_KEYS: {exc}") from None
    if not gateways:
        gateways = [gateway_signer(settings).public_key]
    anchors = [anchor(public_key, "gateway") for public_key in gateways]
    anchors.append(anchor(decider_public_key, "decider"))
    return {a.key_id: a for a in anchors}


def self_registration_message(signer: Signer, kind: AnchorKind) -> tuple[bytes, bytes]:
    """(key, value) of the command by which this anchor registers itself, signed by itself."""
    command = self_registration(signer.public_key, kind)
    return partition_key(command.stream_id), signer.sign(dump_command(command))
