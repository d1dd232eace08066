"""Brokers of a test module's own, for tests that need the broker set up another way."""

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.kafka_broker import LocalKafka
from infra.processes import free_port
from infra.settings import Settings


@contextmanager
def tls_broker(home: Path, label: str) -> Iterator[dict[str, str]]:
    """A broker of its own with TLS on (SASL_SSL), and nothing else: the environment to use it."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env |= {
        "RECTRACK_HOME": str(home),
        "RECTRACK_KAFKA_PORT": str(free_port()),
        "RECTRACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "RECTRACK_PG_PORT": str(free_port()),
        "RECTRACK_KAFKA_TLS": "1",
        "RECTRACK_PARTITIONS": "2",
        "RECTRACK_TOPIC_PREFIX": f"{label}-{uuid.uuid4().hex[:6]}.",
        "RECTRACK_LOG_LEVEL": "warning",
    }
    kafka = LocalKafka(Settings.from_env(env))
    kafka.start()
    try:
        yield env
    finally:
        kafka.stop()


def free_port_block(count: int) -> int:
    """The first of `count` consecutive free ports (three nodes' client and controller ports)."""
    for _ in range(200):
        base = free_port(20000, 32000 - count)
        taken = False
        for port in range(base, base + count):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return base
    raise RuntimeError(f"no {count} consecutive free ports")
