"""lossd.warmup: the background warm-up ``lossd serve`` starts before importing the server,
and the LLVM-lock events switched off while the kernels load (and restored after)."""

from __future__ import annotations

import threading

import pytest
from llvmlite.binding import ffi

from lossd import warmup


def test_start_runs_warm_up_in_a_thread_and_returns_its_timings(monkeypatch):
    seen = []

    def fake(defer_parallel: bool = False) -> dict[str, float]:
        seen.append(threading.current_thread().name)
        return {"mse": 0.5}

    monkeypatch.setattr(warmup, "warm_up", fake)
    timings, seconds = warmup.start().result(timeout=60)
    assert timings == {"mse": 0.5} and seconds >= 0.0
    assert seen == ["lossd-warm-up"]


def test_deferred_start_resolves_before_the_parallel_builds_load(monkeypatch):
    """``lossd serve``: ready (the future) after the serial builds; the parallel builds load
    right after, in the same thread; a plain start loads nothing more."""
    events = []
    started, loaded = threading.Event(), threading.Event()
    futures = []

    def fake(defer_parallel: bool = False) -> dict[str, float]:
        started.wait(60)  # until the test holds the future
        events.append(("warm_up", defer_parallel))
        return {}

    def load() -> None:
        events.append(("load", futures[0].done(), threading.current_thread().name))
        loaded.set()

    monkeypatch.setattr(warmup, "warm_up", fake)
    monkeypatch.setattr(warmup, "load_parallel_builds", load)
    futures.append(warmup.start(defer_parallel=True))
    started.set()
    assert futures[0].result(timeout=60)[0] == {}
    assert loaded.wait(60)
    assert events == [("warm_up", True), ("load", True, "lossd-warm-up")]
    events.clear()
    warmup.start().result(timeout=60)
    assert events == [("warm_up", False)]


def test_start_passes_the_warm_up_error_on(monkeypatch):
    def broken(defer_parallel: bool = False) -> dict[str, float]:
        raise RuntimeError("no kernels")

    monkeypatch.setattr(warmup, "warm_up", broken)
    with pytest.raises(RuntimeError, match="no kernels"):
        warmup.start().result(timeout=60)


def test_llvm_lock_events_are_off_inside_and_restored_after():
    import numba.core.base  # noqa: F401 - Numba's callbacks registered

    lock = ffi.lib._lock
    before = list(lock._cblist)
    assert before, "Numba registers its llvm_lock event callbacks at import"
    added = (lambda: None, lambda: None)
    with warmup.llvm_lock_events_off():
        assert lock._cblist == []
        ffi.register_lock_callback(*added)  # registered meanwhile: kept
    assert lock._cblist == [*before, added]
    ffi.unregister_lock_callback(*added)
    assert lock._cblist == before


def test_a_started_warm_up_cannot_be_cancelled(monkeypatch):
    release = threading.Event()

    def slow(defer_parallel: bool = False) -> dict[str, float]:
        release.wait(60)
        return {}

    monkeypatch.setattr(warmup, "warm_up", slow)
    future = warmup.start()
    assert not future.cancel()  # as a running executor job: the thread finishes its work
    release.set()
    assert future.result(timeout=60)[0] == {}
