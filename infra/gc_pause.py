"""Keeping the cyclic garbage collector off the hot paths of the decider and the projector."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused(*, then_freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector around one batch.

    A batch allocates tens of thousands of objects (documents, envelopes, rows) that stay alive
    until it is written, and every collection their allocation triggers walks them all again:
    at 100k events that was about a quarter of the projector's CPU time. Garbage in reference
    cycles waits for the next collection after the batch; a batch is bounded, so is the wait.

    `then_freeze`, for a process whose memory grows with the log (the decider keeps every
    stream's state and every command's outcome): after the batch, collect what is not frozen
    yet (this batch's survivors, so the cost stays per batch) and freeze the rest, so no later
    collection walks it again. Without it, the collections walked the whole of the decider's
    growing memory: 20 µs of CPU per command at 100k commands (BENCHMARKS.md). A frozen
    object is still freed when its last reference goes; only a reference cycle among objects
    already frozen would outlive its use, and the decider's state holds none.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if then_freeze:
            gc.collect()
            gc.freeze()
        if enabled:
            gc.enable()
