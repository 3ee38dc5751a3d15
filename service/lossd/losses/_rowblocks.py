"""Chunks of rows for the prange loop of a per-sample (row) :func:`~lossd.kernels.jit.dual`
kernel, the row counterpart of :mod:`lossd.losses._blocks`.

A row kernel is ``for b in prange(row_blocks(rows, per)): total += body(b * per,
min(rows, b * per + per), ...)`` with ``per = rows_per_block(cols)`` and ``body`` a
:func:`~lossd.kernels.jit.block` function looping over its rows: the parallel build's
parfor then holds one call instead of the inlined row loop (whose IR the parfor passes
copy several times: slow compiles). A chunk covers about ``BLOCK`` elements,

    per = max(1, BLOCK // cols),    row_blocks = ceil(rows / per),

so a call's overhead is spread over thousands of elements and the chunks still split a
batch of wide rows between the threads.
"""

from __future__ import annotations

from lossd.kernels.jit import inline
from lossd.losses._blocks import BLOCK


@inline
def rows_per_block(cols):  # pragma: no cover - compiled
    """How many rows of ``cols`` elements one chunk holds (at least one)."""
    return max(1, BLOCK // max(cols, 1))


@inline
def row_blocks(rows, per):  # pragma: no cover - compiled
    """The number of chunks of ``per`` rows covering ``rows`` rows."""
    return (rows + per - 1) // per
