"""Signing for tests that write commands straight to the commands topic, as a team's system.

A team key is registered the way an admin registers one (a `RegisterSigningKey` command through
the API with an admin's bearer token); its commands are then signed here and produced with a
plain aiokafka producer, keyed like every command by its inspection, so that nothing of the
product's gateway is involved.
"""

from typing import Any
from uuid import uuid4

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events.ed25519 import encode_public_key
from events.signing import Signer
from events.streams import partition_key
from infra.kafka_security import PrincipalKind, create_principal, revoke_principal
from infra.settings import Settings
from services.domain.commands import Command, dump_command


def new_signer() -> Signer:
    """A fresh key pair, as a team would make one."""
    return Signer(Ed25519PrivateKey.generate())


def fixed_signer(seed: int) -> Signer:
    """A key pair from a fixed seed, for unit tests that want the same key every run."""
    return Signer(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


def signed(signer: Signer, command: Command | dict[str, Any]) -> bytes:
    """The wire bytes of a command (or of any command-shaped document) signed by this key."""
    payload = dump_command(command) if isinstance(command, Command) else orjson.dumps(command)
    return signer.sign(payload)


def registration_body(
    signer: Signer, principal: dict[str, str], kind: str = "team"
) -> dict[str, Any]:
    """The body of `POST /commands` by which an admin registers this key to a principal."""
    return {
        "type": "RegisterSigningKey",
        "data": {
            "public_key": encode_public_key(signer.public_key),
            "principal": principal,
            "kind": kind,
        },
    }


async def register_key(
    api_url: str, admin_headers: dict[str, str], signer: Signer, principal: dict[str, str]
) -> dict[str, Any]:
    """Register a team key through the API as an admin; the accepted outcome."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        response = await api.post(
            "/commands", json=registration_body(signer, principal), headers=admin_headers
        )
    assert response.status_code == 201, response.text
    outcome: dict[str, Any] = response.json()
    return outcome


class TeamProducer:
    """A team's own system: signs with its key and produces straight onto the commands topic,
    logged in to Kafka as a team principal of its own (made on entry, revoked on exit), so it
    has exactly a team's rights."""

    def __init__(self, settings: Settings, signer: Signer) -> None:
        self.settings = settings
        self.signer = signer
        self.principal = f"team-{uuid4().hex[:10]}"
        self.producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> "TeamProducer":
        credentials = await create_principal(self.settings, self.principal, PrincipalKind.team)
        self.producer = AIOKafkaProducer(
            **credentials.client_options(), acks="all", enable_idempotence=True
        )
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.producer is not None:
            await self.producer.stop()
        await revoke_principal(self.settings, self.principal)

    async def send(self, stream_id: str, command: Command | dict[str, Any]) -> None:
        """Sign and produce one command, keyed by its stream's inspection."""
        await self.send_raw(stream_id, signed(self.signer, command))

    async def send_raw(self, stream_id: str, value: bytes) -> None:
        """Produce bytes as they are (unsigned, forged...), keyed as a command of this stream."""
        assert self.producer is not None, "use TeamProducer with `async with`"
        await self.producer.send_and_wait(
            self.settings.topics.commands, value, key=partition_key(stream_id)
        )
