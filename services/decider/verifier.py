"""Signature checks of a batch in a helper process, beside the decider's own work.

An Ed25519 verification costs about 90 µs of CPU here, as much as the rest of what the
decider itself does for a command, and `cryptography` holds the GIL while it verifies, so a
thread would not help. The decider therefore hands each batch's (public key, signature,
payload) triples to a helper process, `python -m services.decider.verifier`, and takes the
helper's answers as it goes:

- the decider never waits for the helper. When a command's turn comes and the helper has not
  answered for it, the decider verifies it itself. So a helper starved of CPU (the machine
  is busy) costs nothing but the CPU it does get, and a fast one saves the decider every
  verification;
- the helper skips what the decider has already passed: the decider writes its position into
  a few bytes of memory the two share, which the helper reads before each job. Neither does
  the same work twice (but for the one job they may cross on);
- answers come back over a pipe, each tagged with its batch and job, and the decider reads
  them without blocking and without the event loop (it does not yield in the middle of a
  batch). A stale, torn or missing answer can only make the decider verify a command itself;
  the shared memory carries positions only, never a verdict.

Only the cryptography moves: which key a command names, whether the log still trusts it and
what it may do are decided in the decider, in order. An answer is used only for the very
public key it was computed with, so a key registered or revoked in the middle of a batch is
still judged at its place in the log. The helper exits when its input closes, so it never
outlives the decider, even one killed with SIGKILL.
"""

import asyncio
import contextlib
import fcntl
import mmap
import os
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.ed25519 import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, load_public_key, verify

log = structlog.get_logger(__name__)

# Below this many signatures a batch is verified in the decider: handing it over costs more.
MIN_BATCH = 16
# Positions are packed as generation << 20 | job: a batch never has a million jobs.
JOB_BITS = 20
MAX_JOBS = (1 << JOB_BITS) - 1

# A batch of 500 commands is about 350 KB of frame; Linux lets anyone have 1 MB pipes.
PIPE_BYTES = 1 << 20

Job = tuple[bytes, bytes, bytes]  # public key (raw), signature (raw), payload (UTF-8 bytes)

_FRAME = struct.Struct("!QI")  # generation, number of jobs
_JOB = struct.Struct(f"!{PUBLIC_KEY_BYTES}s{SIGNATURE_BYTES}sI")  # key, signature, length
_ANSWER = struct.Struct("!QIB")  # generation, job, 1 verified / 0 not
_POSITION = struct.Struct("=Q")  # the decider's position, in the shared memory

PENDING, VERIFIED, REFUSED = 0, 1, 2


def encode(generation: int, jobs: Sequence[Job]) -> bytes:
    """One request frame: the batch's generation and its jobs (key, signature, payload)."""
    parts = [_FRAME.pack(generation, len(jobs))]
    for public_key, signature, payload in jobs:
        parts.append(_JOB.pack(public_key, signature, len(payload)))
        parts.append(payload)
    return b"".join(parts)


def verify_all(jobs: Sequence[Job], keys: dict[bytes, Ed25519PublicKey] | None = None) -> bytes:
    """Each signature checked against its public key: one byte per job, 1 when it verifies."""
    keys = {} if keys is None else keys
    results = bytearray(len(jobs))
    for n, (public_key, signature, payload) in enumerate(jobs):
        results[n] = _verify(keys, public_key, signature, payload)
    return bytes(results)


def _verify(
    keys: dict[bytes, Ed25519PublicKey], public_key: bytes, signature: bytes, payload: bytes
) -> bool:
    key = keys.get(public_key)
    if key is None:
        key = keys[public_key] = load_public_key(public_key)
    return verify(key, signature, payload)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(requests: BinaryIO, answers: BinaryIO, position: mmap.mmap) -> None:
    """The helper's loop: frames of jobs in, an answer per job out, until the input ends.

    Before each job it reads where the decider is: a job the decider has passed, or of a
    batch the decider has finished, is skipped (the decider verified it itself).
    """
    keys: dict[bytes, Ed25519PublicKey] = {}
    while (head := _read_exactly(requests, _FRAME.size)) is not None:
        generation, count = _FRAME.unpack(head)
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
        for index, (public_key, signature, payload) in enumerate(jobs):
            (decider_at,) = _POSITION.unpack_from(position)
            if (generation << JOB_BITS) | index < decider_at:
                continue  # the decider got there first (or is on a later batch)
            ok = _verify(keys, public_key, signature, payload)
            answers.write(_ANSWER.pack(generation, index, ok))
            answers.flush()


class BatchVerifier:
    """One helper process that verifies signatures of the decider's batches."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: asyncio.WriteTransport | None = None
        self._position: mmap.mmap | None = None
        self._generation = 0
        self._answers = bytearray()  # this batch's: PENDING, VERIFIED or REFUSED per job
        self._unread = b""  # an answer read in part
        self.broken = False
        self.batches = 0  # batches handed to the helper (for tests and curious operators)
        self.answered = 0  # jobs the helper answered before the decider needed them

    async def start(self) -> None:
        """Start the helper process."""
        memory = _shared_file()
        try:
            os.ftruncate(memory, mmap.PAGESIZE)
            self._position = mmap.mmap(memory, mmap.PAGESIZE)
            self._process = _spawn(memory)
        finally:
            os.close(memory)
        assert self._process.stdin is not None and self._process.stdout is not None
        os.set_blocking(self._process.stdout.fileno(), False)
        _widen(self._process.stdin.fileno())
        # Writes are buffered by the event loop: a batch's frame never blocks the decider.
        self._requests, _ = await asyncio.get_running_loop().connect_write_pipe(
            lambda: _BrokenOnLoss(self), self._process.stdin
        )
        self.broken = False

    async def stop(self) -> None:
        """Stop the helper: its input closes, and it is killed if it does not exit at once."""
        process, self._process = self._process, None
        if self._requests is not None:
            self._requests.close()
            self._requests = None
        if self._position is not None:
            self._position.close()
            self._position = None
        if process is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), 2)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.to_thread(process.wait)
        if process.stdout is not None:
            process.stdout.close()

    async def submit(self, jobs: Sequence[Job]) -> bool:
        """Hand a batch's jobs to the helper; False when the decider verifies them all itself."""
        self._answers = bytearray()
        if self._process is None or len(jobs) < MIN_BATCH:
            return False
        if self.broken or self._process.poll() is not None or self._requests is None:
            log.warning("verifier_restarted", returncode=self._process.poll())
            await self.stop()
            await self.start()  # for the next batch; this one is verified in the decider
            return False
        jobs = jobs[:MAX_JOBS]
        self._generation += 1
        self._answers = bytearray(len(jobs))
        self._unread = b""
        self._at(0)
        self._requests.write(encode(self._generation, jobs))
        self.batches += 1
        return True

    def finish(self) -> None:
        """The batch is decided: the helper skips whatever of it is left."""
        self._at(MAX_JOBS)

    def verified(self, index: int) -> bool | None:
        """Whether job `index` of the batch verified; None when the decider must check itself.

        Called in job order; tells the helper where the decider is.
        """
        if index >= len(self._answers):
            return None
        self._at(index + 1)
        if self._answers[index] == PENDING:
            self._read_answers()
        answer = self._answer(index)
        if answer is not None:
            self.answered += 1
        return answer

    def _answer(self, index: int) -> bool | None:
        answer = self._answers[index] if index < len(self._answers) else PENDING
        return None if answer == PENDING else answer == VERIFIED

    def _at(self, index: int) -> None:
        """Tell the helper the decider has started on job `index`: it skips those before."""
        if self._position is not None:
            _POSITION.pack_into(self._position, 0, (self._generation << JOB_BITS) | index)

    def _read_answers(self) -> None:
        process = self._process
        if process is None or process.stdout is None:
            return
        chunks = [self._unread]
        while True:
            try:
                data = os.read(process.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            except OSError:
                self.broken = True
                break
            if not data:  # the helper exited
                self.broken = True
                break
            chunks.append(data)
        data = b"".join(chunks)
        whole = len(data) - len(data) % _ANSWER.size
        for generation, index, ok in _ANSWER.iter_unpack(data[:whole]):
            if generation == self._generation and index < len(self._answers):
                self._answers[index] = VERIFIED if ok else REFUSED
        self._unread = data[whole:]


def _spawn(memory: int) -> "subprocess.Popen[bytes]":
    # Popen, not asyncio's: the decider reads the answers itself, without the event loop.
    return subprocess.Popen(
        [sys.executable, "-m", "services.decider.verifier", str(memory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=(memory,),
    )


def _widen(pipe: int) -> None:
    """A pipe that holds a whole batch's frame (Linux): one write per batch, one wake-up."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe, set_size, PIPE_BYTES)


def _shared_file() -> int:
    """A file descriptor of memory the helper maps too (memfd on Linux, else a temp file)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("rectrack-verifier")
    with tempfile.TemporaryFile() as backing:
        return os.dup(backing.fileno())


class _BrokenOnLoss(asyncio.Protocol):
    """The write pipe's protocol: a lost helper marks the verifier for replacement."""

    def __init__(self, verifier: BatchVerifier) -> None:
        self._verifier = verifier
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        # Only for the helper in use: closing a replaced one says nothing about its successor.
        if self._verifier._requests is self._transport:
            self._verifier.broken = True


def _yield_to_the_decider() -> None:
    """Never preempt the decider: it must not wait for the CPU its helper took.

    Without this, each batch's frame woke the helper, which (having slept, so owed CPU)
    preempted the decider on its own core for milliseconds: 30 µs of the decider's time per
    command. SCHED_BATCH turns that wake-up preemption off. (Not a lower priority as well:
    on a busy machine the helper then got so little CPU that the decider verified most
    commands itself.)
    """
    if hasattr(os, "sched_setscheduler"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def main() -> None:
    """The helper process: serve until the decider closes our input (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the decider, which stops us
    _yield_to_the_decider()
    memory = int(sys.argv[1])
    position = mmap.mmap(memory, mmap.PAGESIZE)
    with contextlib.suppress(BrokenPipeError):
        serve(sys.stdin.buffer, sys.stdout.buffer, position)


if __name__ == "__main__":
    main()
