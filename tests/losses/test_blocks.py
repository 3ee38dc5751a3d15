"""lossd.losses._blocks: the block helpers the elementwise kernels share."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from lossd.losses._blocks import BLOCK, blocks, broadcast_plan, gather, sink


@numba.njit(cache=False)
def _sink_pair(a, b, i0, stop):
    """Addresses and lengths of two sinks, after writing 1 and 2 through them."""
    va, vb = sink(a, i0, stop), sink(b, i0, stop)
    for k in range(stop - i0):
        va[k] = 1.0
        vb[k] = 2.0
    return va.ctypes.data, vb.ctypes.data, va.size, vb.size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sink_is_the_block_view_of_a_requested_output(dtype):
    a, b = np.zeros(3 * BLOCK, dtype), np.zeros(3 * BLOCK, dtype)
    pa, pb, na, nb = _sink_pair(a, b, BLOCK, 2 * BLOCK)
    assert (na, nb) == (BLOCK, BLOCK)
    assert pa == a[BLOCK:].ctypes.data and pb == b[BLOCK:].ctypes.data
    assert a[:BLOCK].sum() == 0 and (a[BLOCK:2 * BLOCK] == 1).all() and a[2 * BLOCK:].sum() == 0
    assert (b[BLOCK:2 * BLOCK] == 2).all()


def test_sinks_of_unrequested_outputs_are_disjoint_scratch():
    """Two size-0 outputs get separate block-long scratches (no overlap for LLVM's check)."""
    a, b = np.empty(0), np.empty(0)
    pa, pb, na, nb = _sink_pair(a, b, 0, BLOCK)
    assert (na, nb) == (BLOCK, BLOCK)
    assert abs(pa - pb) >= BLOCK * 8
    assert a.size == 0 and b.size == 0


@numba.njit(cache=False)
def _gather_all(n, w, dims, st):
    out = np.empty(n)
    for b in range(blocks(n)):
        i0 = b * BLOCK
        stop = min(i0 + BLOCK, n)
        scratch = np.empty(BLOCK)
        gather(scratch, w, dims, st, i0, stop)
        out[i0:stop] = scratch[:stop - i0]
    return out


@pytest.mark.parametrize("shape,wshape", [((5000,), (1,)), ((3, 3000), (3000,)), ((3000, 3), (3000, 1)),
                                          ((2, 2500, 2), (2500, 1)), ((7, 1200), (7, 1200))])
def test_gather_reads_the_numpy_broadcast(shape, wshape):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(wshape)
    dims, st = broadcast_plan(shape, w)
    got = _gather_all(int(np.prod(shape)), w.ravel(), dims, st)
    np.testing.assert_array_equal(got, np.broadcast_to(w, shape).ravel())
