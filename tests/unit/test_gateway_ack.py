"""The gateway's bound on the log's acknowledgement: past it, a command is not acknowledged."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from infra.settings import Settings
from services.decider.gateway import CommandGateway
from services.domain.idempotency import principal_of
from tests.builders import publish
from tests.signing import fixed_signer


class Producer:
    """Answers `send` after `metadata_delay` seconds with a future it settles (or never)."""

    def __init__(self, metadata_delay: float = 0.0, acknowledge: bool = True) -> None:
        self.metadata_delay = metadata_delay
        self.acknowledge = acknowledge
        self.futures: list[asyncio.Future[Any]] = []
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Any]:
        self.sent.append((key, value))
        await asyncio.sleep(self.metadata_delay)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.acknowledge:
            future.set_result(None)
        self.futures.append(future)
        return future


def gateway(tmp_path: Path, producer: Producer) -> CommandGateway:
    settings = Settings.from_env(
        {
            "RECTRACK_HOME": str(tmp_path),
            "KAFKA_BOOTSTRAP_SERVERS": "localhost:1",  # never reached: the producer is a fake
            "RECTRACK_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        }
    )
    made = CommandGateway(settings, signer=fixed_signer(7))
    made.producer = producer
    return made


async def test_an_acknowledged_send_returns(tmp_path: Path) -> None:
    await gateway(tmp_path, Producer()).send([publish()], ack_timeout=1)


async def test_no_acknowledgement_in_time_is_a_kafka_error_and_leaves_the_send_alone(
    tmp_path: Path,
) -> None:
    producer = Producer(acknowledge=False)
    with pytest.raises(KafkaTimeoutError, match="did not acknowledge"):
        await gateway(tmp_path, producer).send([publish(), publish()], ack_timeout=0.2)
    # The producer's own futures are not cancelled: it may still deliver, idempotently.
    assert [f.cancelled() for f in producer.futures] == [False, False]


async def test_no_partition_leader_in_time_is_a_kafka_error(tmp_path: Path) -> None:
    with pytest.raises(KafkaTimeoutError):
        await gateway(tmp_path, Producer(metadata_delay=5)).send([publish()], ack_timeout=0.2)


async def test_without_a_bound_the_gateway_waits_as_before(tmp_path: Path) -> None:
    producer = Producer(acknowledge=False)
    sending = asyncio.ensure_future(gateway(tmp_path, producer).send([publish()]))
    await asyncio.sleep(0.3)
    assert not sending.done()
    producer.futures[0].set_result(None)
    await asyncio.wait_for(sending, 1)


async def test_commands_signed_ahead_are_sent_as_send_would_sign_them(tmp_path: Path) -> None:
    commands = [publish(), publish()]
    signing_then, signed_ahead = Producer(), Producer()
    await gateway(tmp_path, signing_then).send(commands)
    ahead = gateway(tmp_path, signed_ahead)
    await ahead.send(ahead.sign(commands))
    # Ed25519 is deterministic: the same key signs the same payload into the same bytes.
    assert signed_ahead.sent == signing_then.sent
    assert len(signed_ahead.sent) == 2
    assert all(ahead.sent_by(c.command_id, principal_of(c.actor, c.loaded_by)) for c in commands)
