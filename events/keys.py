"""Events of a signing key's stream (stream id = `key:{key_id}`): the key registry in the log.

A key is registered once and revoked at most once; a revoked key never comes back (a new key
is registered instead). Who could act for which team on a date is therefore a question the
log answers: the keys registered to that team before it and not revoked by then (by
`recorded_at`, the order the decider saw them in).
"""

from events.envelope import Actor, EventData
from events.signing import KeyId, KeyKind, PublicKeyText
from events.types import RecordedLongText


class SigningKeyRegistered(EventData):
    """An admin registered a public key to a principal (or an anchor registered itself)."""

    key_id: KeyId
    public_key: PublicKeyText
    principal: Actor
    kind: KeyKind


class SigningKeyRevoked(EventData):
    """An admin revoked a key: commands it signs are refused from this event on."""

    key_id: KeyId
    reason: RecordedLongText
