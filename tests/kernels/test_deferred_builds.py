"""Deferred parallel builds (:func:`lossd.kernels.jit.defer_parallel_builds`): while deferred
a new :class:`~lossd.kernels.jit.Dual` has only its serial build, which serves every size
with the same values; loading switches large sizes to the parallel build (parfor code)
and ends the deferral, so kernels made afterwards compile both builds at once."""

from __future__ import annotations

import numpy as np

from lossd.kernels import jit


def _scaled_sum(x, scale):  # pragma: no cover - compiled
    """sum_i scale * x_i over blocks of 1024 (prange over blocks)."""
    n_blocks = (x.size + 1023) // 1024
    total = 0.0
    for b in jit.prange(n_blocks):
        part = 0.0
        for i in range(b * 1024, min(x.size, (b + 1) * 1024)):
            part += scale * x[i]
        total += part
    return total


SIGNATURES = [jit.f64(jit.ro(jit.f64), jit.f64)]


def _parfors(dispatcher) -> int:
    found = 0
    for cres in dispatcher.overloads.values():
        diagnostics = (cres.metadata or {}).get("parfor_diagnostics")  # None when loaded
        found += len(getattr(diagnostics, "initial_parfors", ()))
    return found


def test_deferred_dual_serves_serially_until_loaded():
    x = np.linspace(-1.0, 3.0, 10_001)
    x.flags.writeable = False
    large = jit.PARALLEL_THRESHOLD
    loaded_before = jit.deferred_signatures_loaded()
    jit.defer_parallel_builds()
    try:
        dual = jit.Dual(_scaled_sum, SIGNATURES)
        assert len(dual.serial.signatures) == 1 and len(dual.parallel.signatures) == 0
        assert dual.pick(large) is dual.serial and dual.pick(0) is dual.serial
        serial_value = dual.call(large, x, 0.5)
    finally:
        count = jit.load_deferred_parallel_builds()
    assert count >= 1  # this kernel's signature (and any module imported meanwhile)
    assert jit.deferred_signatures_loaded() - loaded_before == count
    assert len(dual.parallel.signatures) == 1
    if sum(dual.parallel.stats.cache_misses.values()):  # compiled here (not loaded): parfor code
        assert _parfors(dual.parallel) > 0
    assert dual.pick(large) is dual.parallel and dual.pick(large - 1) is dual.serial
    assert serial_value == dual.serial(x, 0.5)
    np.testing.assert_allclose(dual.call(large, x, 0.5), serial_value, rtol=1e-12)  # block order
    np.testing.assert_allclose(serial_value, 0.5 * x.sum(), rtol=1e-12)
    later = jit.Dual(_scaled_sum, SIGNATURES)  # deferral over: both builds at once
    assert len(later.parallel.signatures) == 1 and later.pick(large) is later.parallel
    assert jit.load_deferred_parallel_builds() == 0
