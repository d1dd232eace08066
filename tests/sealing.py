"""A test decider key, and events sealed with it as the decider seals its batches (no I/O but
`trust_test_decider`).

Tests that write events straight to the log mean either a genuine event (one the decider
wrote, perhaps long ago, perhaps under older rules): they seal it here; or a forged one: they
leave it unsealed, or seal it with a key nobody trusts (`untrusted_sealer`).
"""

from collections.abc import Sequence
from pathlib import Path

import orjson
from aiokafka.partitioner import DefaultPartitioner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from events.seals import Sealer, TrustedKeys, with_seal

# Made afresh for each test run: a key no deployment can ever have trusted.
TEST_DECIDER = Sealer(Ed25519PrivateKey.generate())
TEST_DECIDER_KEYS = TrustedKeys([Ed25519PublicKey.from_public_bytes(TEST_DECIDER.public_key)])


def untrusted_sealer() -> Sealer:
    """A decider key that no reader trusts."""
    return Sealer(Ed25519PrivateKey.generate())


def sealed_group(
    values: Sequence[bytes], sealer: Sealer = TEST_DECIDER, partition: int = 0
) -> list[bytes]:
    """Events bound for one partition, in order, sealed as one decider batch: the first one
    carries the seal over all their hashes (signed for that partition)."""
    if not values:
        return []
    hashes = [str(orjson.loads(v)["hash"]) for v in values]
    return [with_seal(values[0], sealer.seal(partition, hashes)), *values[1:]]


def sealed(value: bytes, sealer: Sealer = TEST_DECIDER, partition: int = 0) -> bytes:
    """One event sealed on its own (a decider batch of one on its partition)."""
    return sealed_group([value], sealer, partition)[0]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition producers' default partitioner gives a key (as the decider computes it)."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(key, every, every))


def trust_test_decider(trusted_deciders_dir: Path) -> None:
    """Trust the test decider key where a stack's readers look for decider keys."""
    from infra.decider_keys import trust_public_key  # I/O, kept out of the pure helpers

    trust_public_key(trusted_deciders_dir, TEST_DECIDER.public_key)
