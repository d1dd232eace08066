"""Keeping the cyclic garbage collector off the hot paths of the decider and the projector."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Every this many freezes, one whole collection first (unfreeze, collect, freeze): a reference
# cycle frozen while alive (an asyncio or Kafka client object of the moment) and dropped later
# is reclaimed then, so nothing leaks for ever; one walk of the whole memory per 1,000 batches
# (500,000 commands) costs nothing measurable.
WHOLE_COLLECTION_EVERY = 1000
_freezes = 0


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
    object is still freed when its last reference goes; a reference cycle frozen while alive
    and dropped later waits for the whole collection of every WHOLE_COLLECTION_EVERY-th batch.
    """
    global _freezes
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if then_freeze:
            _freezes += 1
            if _freezes % WHOLE_COLLECTION_EVERY == 0:
                gc.unfreeze()
            gc.collect()
            gc.freeze()
        if enabled:
            gc.enable()
