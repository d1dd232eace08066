"""The cyclic GC around a batch: paused during it; with then_freeze, its survivors frozen."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from infra import gc_pause
from infra.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_paused_during_the_batch_and_enabled_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_then_freeze_keeps_survivors_out_of_later_collections() -> None:
    with gc_paused(then_freeze=True):
        survivors = [[n] for n in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(survivors)
    # Nothing tracked is left for a collection to walk but what was made since.
    assert sum(map(len, (gc.get_objects(g) for g in range(3)))) < len(survivors)


def test_then_freeze_collects_the_batch_cycles_before_freezing() -> None:
    class Node:
        partner: "Node"

    with gc_paused(then_freeze=True):
        a, b = Node(), Node()
        a.partner, b.partner = b, a
        first = weakref.ref(a)
        del a, b
    assert first() is None


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with gc_paused(then_freeze=True):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_cycle_frozen_alive_is_reclaimed_by_the_periodic_whole_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Node:
        partner: "Node"

    monkeypatch.setattr(gc_pause, "_freezes", 0)
    monkeypatch.setattr(gc_pause, "WHOLE_COLLECTION_EVERY", 3)
    with gc_paused(then_freeze=True):
        a, b = Node(), Node()
        a.partner, b.partner = b, a
    first = weakref.ref(a)
    del a, b  # garbage now, but frozen: the next batch's collection leaves it
    with gc_paused(then_freeze=True):
        pass
    assert first() is not None
    with gc_paused(then_freeze=True):  # the third: everything walked once
        pass
    assert first() is None
