"""Reductions: the string becomes an enum once, at the boundary; kernels see integers.

| reduction | value        | gradient factor s |
|-----------|--------------|-------------------|
| none      | l (unreduced)| 1 (gradient of sum l) |
| sum       | sum l        | 1                 |
| mean      | sum l / M    | 1/M (or the loss's own divisor) |
| batchmean | sum l / N    | 1/N               |
"""

from __future__ import annotations

import enum


class Reduction(enum.IntEnum):
    NONE = 0
    SUM = 1
    MEAN = 2
    BATCHMEAN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


REDUCTION_NAMES = tuple(r.label for r in Reduction)
BY_NAME = {r.label: r for r in Reduction}


def scale(reduction: Reduction, count: int, batch: int) -> float:
    """The factor s that turns a sum into the reduced value (1 for none and sum)."""
    if reduction is Reduction.MEAN:
        return 1.0 / count
    if reduction is Reduction.BATCHMEAN:
        return 1.0 / batch
    return 1.0
