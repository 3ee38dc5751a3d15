"""Reusable per-loss checks for ``LossSpec.validate``: each raises InvalidArgument
naming the input (``inputs.<name>``) or parameter (``params.<name>``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lossd.kernels.finite import any_outside
from lossd.spec import Call
from lossd_client.errors import InvalidArgument


def input_error(name: str, description: str) -> InvalidArgument:
    """An InvalidArgument about input ``name``."""
    return InvalidArgument.field(f"inputs.{name}", description)


def param_error(name: str, description: str) -> InvalidArgument:
    """An InvalidArgument about parameter ``name``."""
    return InvalidArgument.field(f"params.{name}", description)


def shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def rank(call: Call, name: str, ndim: int, words: str = "") -> None:
    """Input ``name`` (if given) has exactly ``ndim`` dimensions."""
    a = call.get(name)
    if a is not None and a.ndim != ndim:
        raise input_error(name, f"expected rank {ndim}{' ' + words if words else ''}, "
                                f"got rank {a.ndim} with shape {shape_str(a.shape)}")


def min_rank(call: Call, name: str, ndim: int, words: str = "") -> None:
    """Input ``name`` (if given) has at least ``ndim`` dimensions."""
    a = call.get(name)
    if a is not None and a.ndim < ndim:
        raise input_error(name, f"expected rank >= {ndim}{' ' + words if words else ''}, "
                                f"got shape {shape_str(a.shape)}")


def shape_is(call: Call, name: str, expected: Sequence[int], words: str) -> None:
    """Input ``name`` (if given) has exactly ``expected`` shape (``words``: the rule)."""
    a = call.get(name)
    if a is not None and tuple(a.shape) != tuple(expected):
        raise input_error(name, f"expected shape {shape_str(expected)} {words}, "
                                f"got {shape_str(a.shape)}")


def same_shape(call: Call, name: str, like: str) -> None:
    """Input ``name`` (if given) has the shape of input ``like`` (no broadcasting)."""
    a, b = call.get(name), call.get(like)
    if a is not None and b is not None and a.shape != b.shape:
        raise input_error(name, f"expected the shape of {like} {shape_str(b.shape)} "
                                f"(no broadcasting), got {shape_str(a.shape)}")


def broadcastable(call: Call, name: str, to: str) -> None:
    """Input ``name`` (if given) broadcasts to input ``to``'s shape by NumPy rules
    without changing it, with rank <= that of ``to``."""
    a, b = call.get(name), call.get(to)
    if a is None or b is None:
        return
    ok = a.ndim <= b.ndim and all(x in (1, y) for x, y in zip(a.shape[::-1], b.shape[::-1]))
    if not ok:
        raise input_error(name, f"shape {shape_str(a.shape)} does not broadcast to the shape "
                                f"{shape_str(b.shape)} of {to}")


def labels_in_range(call: Call, name: str, classes: int, ignore_index: int | None = None) -> None:
    """Integer input ``name`` (if given) lies in [0, classes), or equals ``ignore_index``."""
    a = call.get(name)
    if a is None or a.dtype.kind != "i":
        return
    bad = (a < 0) | (a >= classes)
    if ignore_index is not None:
        bad &= a != ignore_index
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), a.shape)
        extra = f" or equal to ignore_index {ignore_index}" if ignore_index is not None else ""
        raise input_error(name, f"expected class indices in [0, {classes}){extra}, got "
                                f"{int(a[where])} at index {tuple(int(i) for i in where)}")


def values_in(call: Call, name: str, lo: float, hi: float, *, lo_open: bool = False,
              hi_open: bool = False, words: str = "") -> None:
    """Float input ``name`` (if given) lies in the interval from lo to hi: one Numba pass
    (``kernels/finite.py``); only a failing input is scanned again, to name its first
    value out of range."""
    a = call.get(name)
    if a is None:
        return
    if a.dtype.char in "fd" and a.flags.c_contiguous and not any_outside(a, lo, hi, lo_open, hi_open):
        return
    bad = (a <= lo if lo_open else a < lo) | (a >= hi if hi_open else a > hi)
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), a.shape)
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise input_error(name, f"expected values in {interval}{' ' + words if words else ''}, "
                                f"got {float(a[where])!r} at index {tuple(int(i) for i in where)}")


def nonnegative(call: Call, name: str) -> None:
    """Float input ``name`` (if given) has no negative value."""
    values_in(call, name, 0.0, float("inf"))
