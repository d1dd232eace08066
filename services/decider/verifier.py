"""Signature checks of a batch in a helper process, ahead of the decider's own work.

An Ed25519 verification costs about 90 µs of CPU here, as much as the rest of what the
decider itself does for a command, and `cryptography` holds the GIL while it verifies, so a
thread would not help. The decider therefore hands a batch's (public key, signature, payload)
triples to a helper process at the start of the batch, in chunks that grow (8, 16, 32 ...
256), and decides the commands in order as their chunks come back: after the first small
chunk the helper stays ahead, so the decider's own core spends next to nothing on verifying.

The helper is `python -m services.decider.verifier`, talking over its stdin and stdout in
length-prefixed frames: no pickling and no threads in the decider (a process pool's feeder
and result threads cost the decider 15 µs per command, most of what the helper saved). It
exits when its stdin closes, so it never outlives the decider, even one killed with SIGKILL.

Only the cryptography moves: which key a command names, whether the log still trusts it and
what it may do are decided in the decider, in order, as before. A result is used only for the
very public key it was computed with, so a key registered or revoked in the middle of a batch
is still judged at its place in the log. Small batches (an interactive command) and a helper
that fails or is slow are verified in the decider itself.
"""

import asyncio
import contextlib
import signal
import struct
import sys
from collections import deque
from collections.abc import Sequence
from typing import BinaryIO

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.signing import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, load_public_key, verify

log = structlog.get_logger(__name__)

# Below this many signatures a batch is verified in the decider: a round trip to the helper
# costs more than a few verifications.
MIN_BATCH = 16
FIRST_CHUNK = 8
MAX_CHUNK = 256
# A chunk the helper has not answered by then is verified in the decider, and the helper
# is replaced: a stuck helper must not stop the decider.
CHUNK_TIMEOUT = 10.0

Job = tuple[bytes, bytes, bytes]  # public key (raw), signature (raw), payload (UTF-8 bytes)

_COUNT = struct.Struct("!I")
_JOB = struct.Struct(f"!{PUBLIC_KEY_BYTES}s{SIGNATURE_BYTES}sI")


def chunks(count: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk of a batch of `count` jobs: small first, then doubling."""
    bounds, start, size = [], 0, FIRST_CHUNK
    while start < count:
        end = min(count, start + size)
        bounds.append((start, end))
        start, size = end, min(MAX_CHUNK, size * 2)
    return bounds


def encode(jobs: Sequence[Job]) -> bytes:
    """One request frame: the number of jobs, then each job's key, signature and payload."""
    parts = [_COUNT.pack(len(jobs))]
    for public_key, signature, payload in jobs:
        parts.append(_JOB.pack(public_key, signature, len(payload)))
        parts.append(payload)
    return b"".join(parts)


def verify_all(jobs: Sequence[Job], keys: dict[bytes, Ed25519PublicKey] | None = None) -> bytes:
    """Each signature checked against its public key: one byte per job, 1 when it verifies."""
    keys = {} if keys is None else keys
    results = bytearray(len(jobs))
    for n, (public_key, signature, payload) in enumerate(jobs):
        key = keys.get(public_key)
        if key is None:
            key = keys[public_key] = load_public_key(public_key)
        results[n] = verify(key, signature, payload)
    return bytes(results)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The helper's loop: a frame of jobs in, a frame of results out, until its input ends."""
    keys: dict[bytes, Ed25519PublicKey] = {}
    while (head := _read_exactly(requests, _COUNT.size)) is not None:
        (count,) = _COUNT.unpack(head)
        jobs: list[Job] = []
        for _ in range(count):
            fixed = _read_exactly(requests, _JOB.size)
            if fixed is None:
                return
            public_key, signature, length = _JOB.unpack(fixed)
            payload = _read_exactly(requests, length)
            if payload is None:
                return
            jobs.append((public_key, signature, payload))
        answers.write(verify_all(jobs, keys))
        answers.flush()


class Ahead:
    """One batch's verifications, chunk by chunk as the helper finishes them."""

    def __init__(
        self, parts: list[tuple[int, int, "asyncio.Future[bytes]"]], verifier: "BatchVerifier"
    ) -> None:
        self._parts = parts
        self._next = 0
        self._verifier = verifier

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
            # Usually answered already: wait_for (a timer per call) only when it is not.
            answers = future.result() if future.done() else await self._wait(future)
        except (TimeoutError, ConnectionError) as exc:
            log.warning("verifier_failed", error=repr(exc)[:300])
            self._verifier.broken = True  # replaced before the next batch
            return None
        return bool(answers[index - start])

    @staticmethod
    async def _wait(future: "asyncio.Future[bytes]") -> bytes:
        return await asyncio.wait_for(asyncio.shield(future), CHUNK_TIMEOUT)

    def cancel(self) -> None:
        """Forget what is still being verified (the batch failed)."""
        for _, _, future in self._parts:
            future.cancel()


class BatchVerifier:
    """One helper process that verifies signatures of the decider's batches."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._pending: deque[tuple[int, asyncio.Future[bytes]]] = deque()
        self._reader: asyncio.Task[None] | None = None
        self._has_pending = asyncio.Event()
        self.broken = False
        self.batches = 0  # batches handed to the helper (for tests and curious operators)

    async def start(self) -> None:
        """Start the helper process."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.decider.verifier",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read_answers(self._process))
        self.broken = False

    async def stop(self) -> None:
        """Stop the helper: its input closes, and it is killed if it does not exit at once."""
        process, self._process = self._process, None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        self._fail_pending(ConnectionError("the verifier stopped"))
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 2)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def _read_answers(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                # Frames come back in the order they were sent.
                await self._has_pending.wait()
                count, future = self._pending[0]
                answers = await process.stdout.readexactly(count)
                self._pending.popleft()
                if not self._pending:
                    self._has_pending.clear()
                if not future.done():
                    future.set_result(answers)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.broken = True
            self._fail_pending(ConnectionError(f"the verifier exited: {exc!r}"))

    def _fail_pending(self, error: Exception) -> None:
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(error)
        self._has_pending.clear()

    async def submit(self, jobs: Sequence[Job]) -> Ahead | None:
        """Start verifying a batch's jobs; None when the batch is small or there is no helper."""
        if self._process is None or len(jobs) < MIN_BATCH:
            return None
        process = self._process
        if self.broken or process.returncode is not None or process.stdin is None:
            log.warning("verifier_restarted", returncode=process.returncode)
            await self.stop()
            await self.start()  # for the next batch; this one is verified in the decider
            return None
        loop = asyncio.get_running_loop()
        parts = []
        for start, end in chunks(len(jobs)):
            future: asyncio.Future[bytes] = loop.create_future()
            self._pending.append((end - start, future))
            parts.append((start, end, future))
            process.stdin.write(encode(jobs[start:end]))
        self._has_pending.set()
        self.batches += 1
        return Ahead(parts, self)


def main() -> None:
    """The helper process: serve until the decider closes our input (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the decider, which stops us
    with contextlib.suppress(BrokenPipeError):
        serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
