"""Signature checks of a batch in a helper process, ahead of the decider's own work.

An Ed25519 verification costs about 90 µs of CPU here, as much as a third of everything else
the decider does for a command, and `cryptography` holds the GIL while it verifies, so threads
would not help. The decider therefore hands a batch's (public key, signature, payload) triples
to one spawned process at the start of the batch, in chunks that grow (8, 16, 32 ... 256), and
decides the commands in order as their chunks come back: after the first small chunk the
helper stays ahead, so the decider's own core spends nothing on verifying.

Only the cryptography moves: which key a command names, whether the log still trusts it, and
what it may do are decided in the decider, in order, as before. A result is used only for the
very public key it was computed with, so a key registered or revoked in the middle of a batch
is still judged at its place in the log. Small batches (an interactive command) and a helper
that fails are verified in the decider itself.
"""

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.signing import load_public_key, verify

log = structlog.get_logger(__name__)

# Below this many signatures a batch is verified in the decider: a round trip to the helper
# costs more than a few verifications.
MIN_BATCH = 16
FIRST_CHUNK = 8
MAX_CHUNK = 256

Job = tuple[bytes, bytes, bytes]  # public key (raw), signature (raw), payload (UTF-8 bytes)


def verify_all(jobs: Sequence[Job]) -> list[bool]:
    """What the helper process runs: each signature checked against its public key."""
    keys: dict[bytes, Ed25519PublicKey] = {}
    results = []
    for public_key, signature, payload in jobs:
        key = keys.get(public_key)
        if key is None:
            key = keys[public_key] = load_public_key(public_key)
        results.append(verify(key, signature, payload))
    return results


def _exit_with(parent: int) -> None:
    # Pool workers share the pipes they read from, so they never see EOF when the decider
    # dies (SIGKILL included): without this they would wait for work for ever.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start_helper(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the decider, which stops us
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _warm() -> None:
    """Start the process and import what verifying needs before the first batch."""


def chunks(count: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk of a batch of `count` jobs: small first, then doubling."""
    bounds, start, size = [], 0, FIRST_CHUNK
    while start < count:
        end = min(count, start + size)
        bounds.append((start, end))
        start, size = end, min(MAX_CHUNK, size * 2)
    return bounds


class Ahead:
    """One batch's verifications, chunk by chunk as the helper finishes them."""

    def __init__(self, parts: list[tuple[int, int, "asyncio.Future[list[bool]]"]]) -> None:
        self._parts = parts
        self._next = 0

    async def verified(self, index: int) -> bool | None:
        """Whether job `index` verified; None when the helper could not say (verify here)."""
        while self._next < len(self._parts) and self._parts[self._next][1] <= index:
            self._next += 1
        if self._next >= len(self._parts):
            return None
        start, end, future = self._parts[self._next]
        if not start <= index < end:
            return None
        try:
            return (await future)[index - start]
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            log.warning("verifier_failed", error=repr(exc)[:300])
            return None

    def cancel(self) -> None:
        """Forget what is still being verified (the batch failed)."""
        for _, _, future in self._parts:
            future.cancel()


class BatchVerifier:
    """One helper process that verifies signatures of the decider's batches."""

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self.batches = 0  # batches handed to the helper (for tests and curious operators)

    def start(self) -> None:
        """Spawn the helper (in the background: this does not wait for it)."""
        # spawn, not fork: the decider has threads (aiokafka, Faust) a fork would copy mid-state.
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_helper,
            initargs=(os.getpid(),),
        )
        self._executor.submit(_warm)

    def stop(self) -> None:
        """Stop the helper without waiting for work in flight."""
        executor, self._executor = self._executor, None
        if executor is not None:
            processes = list((executor._processes or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                with contextlib.suppress(OSError, ValueError):
                    process.terminate()

    def submit(self, jobs: Sequence[Job]) -> Ahead | None:
        """Start verifying a batch's jobs; None when the batch is small or there is no helper."""
        if self._executor is None or len(jobs) < MIN_BATCH:
            return None
        loop = asyncio.get_running_loop()
        parts = []
        try:
            for start, end in chunks(len(jobs)):
                future: Future[list[bool]] = self._executor.submit(verify_all, jobs[start:end])
                parts.append((start, end, asyncio.wrap_future(future, loop=loop)))
        except (BrokenProcessPool, RuntimeError) as exc:
            log.warning("verifier_restarted", error=repr(exc)[:300])
            for _, _, part in parts:
                part.cancel()
            self.stop()
            self.start()  # the next batch has a helper again; this one verifies in the decider
            return None
        self.batches += 1
        return Ahead(parts)
