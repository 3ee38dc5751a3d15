"""Block-wise loops of the elementwise kernels, and NumPy-broadcast operands read in runs.

A :func:`~lossd.kernels.jit.dual` kernel is ``for b in prange(blocks(n)): total +=
body(b * BLOCK, ...)`` with ``body`` a :func:`~lossd.kernels.jit.block` function: one
compiled loop over ``BLOCK`` elements shared by the serial and the parallel build. The
body slices its arrays to the block (``x[i0:stop]``) and loops from 0: indices that start
at an unknown ``i0`` defeat LLVM's bounds analysis and its vectoriser.

The operand is described over the collapsed shape of the input by :func:`broadcast_plan`:
per collapsed dimension its size and the operand's element stride (0 where broadcast).
The innermost collapsed dimension always has stride 0 or 1, so along a *run* (a stretch of
flat indices inside one innermost row) the operand is either one value or contiguous:

    for each run [i, end):   j = bcast_index(i);   w_k = w[j + (k - i)] (stride 1) or w[j]

:func:`gather` copies a block's operand values into a contiguous float64 scratch (two
trivial copy loops, index arithmetic once per run), and the element loop then reads
``scratch[k]``: one straight loop per block that LLVM vectorises (a loop-invariant select
between ``w[k]`` and a constant, or per-element index arithmetic, would not). Without
broadcasting (no operand, a scalar, or the input's own shape) a run is a whole block.

Outputs that are not requested are size-0 arrays. A loop that writes them under ``if
want:`` gets vectorised behind LLVM's runtime overlap check of all its store ranges, and
two size-0 arrays lie a few bytes apart, so that check fails and the *scalar* loop runs
(sigmoid cross entropy with only the input gradient: 2.2x slower). :func:`sink` gives a
block its own scratch for such an output, so the loop stores unconditionally to memory
that overlaps nothing.
"""

from __future__ import annotations

import numpy as np

from lossd.kernels.jit import inline

#: flat indices per block (a multiple of every SIMD width; float64 scratch of one block: 32 KiB)
BLOCK = 1 << 12


def broadcast_plan(shape: tuple[int, ...], operand: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(dims, strides): ``shape`` collapsed, and ``operand``'s element stride on each
    collapsed dimension (0 where it is broadcast). ``operand=None`` means a (1,) array."""
    rank = len(shape)
    oshape = (1,) if operand is None else operand.shape
    oshape = (1,) * (rank - len(oshape)) + tuple(oshape)
    dims: list[int] = []
    strides: list[int] = []
    acc = 1
    for d in range(rank - 1, -1, -1):
        size = int(shape[d])
        stride = acc if oshape[d] == size and size != 1 else 0
        acc *= oshape[d]
        if size == 1:
            continue
        if dims and strides[-1] * dims[-1] == stride:
            dims[-1] *= size
        else:
            dims.append(size)
            strides.append(stride)
    if not dims:
        dims, strides = [1], [0]
    return np.array(dims[::-1], np.int64), np.array(strides[::-1], np.int64)


@inline
def bcast_index(i, dims, strides):  # pragma: no cover - compiled
    """The element of a broadcast operand that flat index ``i`` of the full shape reads."""
    if dims.size == 1:  # one collapsed dim (dims[0] == full size > i): i % size == i, no division
        return i * strides[0]
    j = 0
    rem = i
    for d in range(dims.size - 1, -1, -1):
        size = dims[d]
        j += (rem % size) * strides[d]
        rem //= size
    return j


@inline
def run_end(i, dims):  # pragma: no cover - compiled
    """The end of the innermost row that flat index ``i`` lies in (the operand is one value
    or contiguous from ``i`` up to there)."""
    inner = dims[dims.size - 1]
    return (i // inner + 1) * inner


@inline
def gather(scratch, w, dims, strides, i0, stop):  # pragma: no cover - compiled
    """scratch[k - i0] = (float64) operand value of flat index k, for k in [i0, stop)."""
    contiguous = strides[strides.size - 1] != 0
    i = i0
    while i < stop:
        end = min(stop, run_end(i, dims))
        j = bcast_index(i, dims, strides) - i
        if contiguous:
            for k in range(i, end):
                scratch[k - i0] = w[j + k]
        else:
            value = np.float64(w[j + i])
            for k in range(i, end):
                scratch[k - i0] = value
        i = end


@inline
def sink(a, i0, stop):  # pragma: no cover - compiled
    """The block view ``a[i0:stop]`` of an output, or a fresh scratch of that length when
    ``a`` is empty (not requested): store to it unconditionally (see the module docstring)."""
    if a.size > 0:
        return a[i0:stop]
    return np.empty(stop - i0, a.dtype)


@inline
def blocks(n):  # pragma: no cover - compiled
    """The number of ``BLOCK``-sized blocks covering n flat indices."""
    return (n + BLOCK - 1) // BLOCK


@inline
def block_sum(a):  # pragma: no cover - compiled
    """The float64 sum of a block's stored values. A float32 element loop that also added to
    a float64 total would be vectorised 4 lanes wide (the accumulator's width); storing in
    that loop and summing here keeps it at 8."""
    total = 0.0
    for k in range(a.size):
        total += np.float64(a[k])
    return total
