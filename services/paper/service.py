"""Papers for a long-running server: rendered off the event loop, bounded, and cached.

Rendering is CPU-bound for seconds (matplotlib, WeasyPrint) and neither library is thread-safe,
so the API renders in a small pool of worker processes, never on its event loop: one PDF once
held `/health` for 19 s. The work is bounded three ways:

- at most `slots` distinct papers are assembled or rendered at once (the workers plus a short
  queue); one more is refused at once with `PaperBusy` (503 and Retry-After), so requests never
  pile up behind one another and database connections stay free for everything else;
- identical requests in flight share one render, and a finished paper is cached by
  (meeting, committee, format, log position): the log position (how many events, the newest
  recorded_at) is what the paper's footer names, so a cached paper is exactly the one a
  rebuild would give, until the next event arrives;
- a request waits at most `wait` seconds; the render carries on and fills the cache, so the
  retry the 503 asks for is answered at once.

Workers run at a lower CPU priority, ignore Ctrl-C (the API stops them), and exit when the API
process is gone, whatever killed it.
"""

import asyncio
import contextlib
import functools
import multiprocessing
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg
import structlog

from infra.logs import configure_logging
from projections.recommendations import queries
from services.paper.assemble import Paper, build_paper
from services.paper.render import PaperFormat, render

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
WAIT_SECONDS = 60.0
CACHE_ENTRIES = 32
CACHE_BYTES = 64 * 1024 * 1024


class PaperBusy(Exception):
    """Too many papers in the making, or this one is still rendering: ask again later."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class PaperKey:
    """What a paper's bytes depend on: the request and the log position it was built from."""

    meeting: date
    committee: str | None
    fmt: PaperFormat
    log_events: int
    log_last_recorded_at: datetime | None

    @classmethod
    def of(cls, paper: Paper, fmt: PaperFormat) -> "PaperKey":
        """The key of a built paper, from the log position it names."""
        return cls(
            paper.meeting, paper.committee, fmt, paper.log_events, paper.log_last_recorded_at
        )


Renderer = Callable[[Paper, PaperFormat], bytes]


def render_in_worker(paper: Paper, fmt: PaperFormat) -> bytes:
    """What a worker process runs: the paper's bytes in one format."""
    return render(paper, fmt)


def _exit_with(parent: int) -> None:
    # Pool workers share the pipes they read from with their siblings, so they never see EOF
    # when the API dies: without this they would wait for work for ever.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start_worker(parent: int, log_level: str) -> None:
    """Initialise a worker process: low priority, no Ctrl-C, gone with its parent."""
    os.nice(10)  # the API and everything else on the machine come first
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the API, which stops us
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    configure_logging(log_level)


def _warm() -> None:
    """Spawn a worker and import what rendering needs before the first paper is asked for."""
    import weasyprint  # noqa: F401 - imported for its start-up cost only


class PaperService:
    """The bounded, cached paper pool of one API process."""

    def __init__(
        self,
        workers: int,
        *,
        queue: int | None = None,
        wait: float = WAIT_SECONDS,
        renderer: Renderer = render_in_worker,
        log_level: str = "info",
        cache_entries: int = CACHE_ENTRIES,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.workers = workers
        self.slots = workers + (2 * workers if queue is None else queue)
        self.wait = wait
        self._renderer = renderer
        self._log_level = log_level
        self._cache: OrderedDict[PaperKey, bytes] = OrderedDict()
        self._cache_entries = cache_entries
        self._cache_bytes = cache_bytes
        self._inflight: dict[PaperKey, asyncio.Task[bytes]] = {}
        self._executor: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the worker processes (in the background: this does not wait for them)."""
        # spawn, not fork: the API has threads (aiokafka, asyncpg) a fork would copy mid-state.
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(), self._log_level),
            # No max_tasks_per_child: on Python 3.11 a pool whose worker retires that way
            # deadlocks with work queued (CPython gh-115634).
        )
        for _ in range(self.workers):
            self._executor.submit(_warm)

    async def stop(self) -> None:
        """Stop the workers now, also mid-render, and forget every paper in flight."""
        executor, self._executor = self._executor, None
        for task in self._inflight.values():
            task.cancel()
        if executor is not None:
            _terminate(executor)

    def _restart(self) -> None:
        """Replace a pool whose worker died (killed, out of memory): the next paper works."""
        if self._executor is not None:
            _terminate(self._executor)
        self.start()

    async def paper(
        self, db: asyncpg.Pool, *, meeting: date, committee: str | None, fmt: PaperFormat
    ) -> bytes:
        """The paper for a meeting, from the cache when the log has not moved since."""
        async with db.acquire() as conn:
            events, last = await queries.log_position(conn)
        key = PaperKey(meeting, committee, fmt, events, last)
        return await self.get(key, functools.partial(_build, db, meeting, committee))

    async def get(self, key: PaperKey, build: Callable[[], Awaitable[Paper]]) -> bytes:
        """The bytes for `key`: cached, shared with an identical request, or made now."""
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            log.debug("paper_cache_hit", meeting=str(key.meeting), fmt=key.fmt.value)
            return cached
        task = self._inflight.get(key)
        if task is None:
            if len(self._inflight) >= self.slots:
                log.warning(
                    "paper_busy", meeting=str(key.meeting), fmt=key.fmt.value, slots=self.slots
                )
                raise PaperBusy(f"{self.slots} papers are being made; ask again shortly")
            task = asyncio.get_running_loop().create_task(self._make(key, build))
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._finished, key))
        try:
            # shield: a client that gives up does not cancel the render others may share.
            return await asyncio.wait_for(asyncio.shield(task), self.wait)
        except TimeoutError:
            raise PaperBusy("the paper is still being made; ask again shortly") from None

    async def _make(self, key: PaperKey, build: Callable[[], Awaitable[Paper]]) -> bytes:
        started = time.perf_counter()
        paper = await build()
        built = time.perf_counter()
        if self._executor is None:
            raise PaperBusy("the paper renderer is stopping")
        try:
            content = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._renderer, paper, key.fmt
            )
        except BrokenProcessPool:
            log.error("paper_worker_died", meeting=str(key.meeting), fmt=key.fmt.value)
            self._restart()
            raise PaperBusy("the paper renderer restarted; ask again") from None
        self._store(key, content)
        self._store(PaperKey.of(paper, key.fmt), content)
        log.info(
            "paper_rendered",
            meeting=str(key.meeting),
            committee=key.committee,
            fmt=key.fmt.value,
            bytes=len(content),
            assemble_seconds=round(built - started, 3),
            render_seconds=round(time.perf_counter() - built, 3),
        )
        return content

    def _finished(self, key: PaperKey, task: asyncio.Task[bytes]) -> None:
        self._inflight.pop(key, None)
        if task.cancelled():
            return
        error = task.exception()  # retrieved here, also when every requester has gone
        if error is not None and not isinstance(error, PaperBusy):
            log.error(
                "paper_failed",
                meeting=str(key.meeting),
                fmt=key.fmt.value,
                error=f"{type(error).__name__}: {error}",
            )

    def _store(self, key: PaperKey, content: bytes) -> None:
        if len(content) > self._cache_bytes:
            return
        self._cache[key] = content
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_entries or self._cached_bytes() > self._cache_bytes:
            self._cache.popitem(last=False)

    def _cached_bytes(self) -> int:
        return sum(len(content) for content in self._cache.values())


async def _build(db: asyncpg.Pool, meeting: date, committee: str | None) -> Paper:
    """Assemble a paper from one snapshot: its tables, charts and footer agree with each other."""
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await build_paper(conn, meeting=meeting, committee=committee)


def _terminate(executor: ProcessPoolExecutor) -> None:
    """Shut a pool down without waiting for a render to finish."""
    # The executor offers no way to stop a running task; its processes are terminated instead.
    processes = list((executor._processes or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
