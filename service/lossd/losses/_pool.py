"""Recycled large output buffers: no first-touch page faults on repeated large requests.

A fresh 40 MB gradient costs about 3 ms of page faults and kernel zeroing (glibc serves
arrays past 32 MiB with a new ``mmap`` every time), as much as the loss kernel itself.
The pool keeps the large arrays it hands out and gives one back out once nothing else
refers to it: CPython's reference count of a pooled array is exactly the pool's own
reference when every result, view (``reshape`` keeps its base alive), memoryview or
other holder is gone. A buffer still referenced anywhere is never reused.

* Only arrays of at least ``LOSSD_POOL_MIN_BYTES`` (1 MiB) are pooled; smaller ones are
  cheap and come from malloc's free lists anyway.
* The pool holds at most ``LOSSD_POOL_BYTES`` (256 MiB; 0 turns it off) of arrays, busy
  or free; a free array is dropped (least recently used first) to make room for a new
  size, and an array that does not fit is simply not pooled.
* Exact matches only (dtype and element count): no slicing of larger buffers.
* :meth:`BufferPool.forget` un-pools the buffers of one result: the server does it for
  large requests, whose response copies would otherwise stack on top of pooled buffers.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from typing import Iterable

import numpy as np

MIN_BYTES = int(os.environ.get("LOSSD_POOL_MIN_BYTES", 1 << 20))
MAX_BYTES = int(os.environ.get("LOSSD_POOL_BYTES", 256 << 20))


class BufferPool:
    """Large ``np.empty`` replacements that reuse arrays nobody refers to any more."""

    def __init__(self, min_bytes: int = MIN_BYTES, max_bytes: int = MAX_BYTES) -> None:
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self._arrays: list[np.ndarray] = []  # 1-D, least recently handed out first
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...] | int, dtype: np.dtype, size: int = -1) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype`` (an ``np.dtype``), recycled when
        large; ``size``: the element count when the caller knows it (saves a product)."""
        if size < 0:
            size = shape if isinstance(shape, int) else math.prod(shape)
        if size * dtype.itemsize < self.min_bytes or self.max_bytes <= 0:
            return np.empty(shape, dtype)
        with self._lock:
            flat = self._take(size, dtype)
        return flat.reshape(shape)

    def _take(self, size: int, dtype: np.dtype) -> np.ndarray:
        arrays = self._arrays
        for i in range(len(arrays)):
            if arrays[i].size == size and arrays[i].dtype == dtype and self._unused(i):
                flat = arrays.pop(i)
                arrays.append(flat)
                return flat
        flat = np.empty(size, dtype)
        if self._make_room(flat.nbytes):
            arrays.append(flat)
        return flat

    def _unused(self, i: int) -> bool:
        # References: the pool's list and getrefcount's own argument.
        return sys.getrefcount(self._arrays[i]) <= 2

    def _make_room(self, nbytes: int) -> bool:
        if nbytes > self.max_bytes:
            return False
        arrays = self._arrays
        held = sum(a.nbytes for a in arrays)
        i = 0
        while held + nbytes > self.max_bytes and i < len(arrays):
            if self._unused(i):
                held -= arrays.pop(i).nbytes
            else:
                i += 1
        return held + nbytes <= self.max_bytes

    def forget(self, arrays: Iterable[np.ndarray]) -> None:
        """Stop pooling the buffers of ``arrays`` (results or views of them): they stay valid
        and are freed, as ordinary arrays, once their last reference goes."""
        bases = set()
        for a in arrays:
            while a is not None:
                bases.add(id(a))
                a = a.base if isinstance(a.base, np.ndarray) else None
        with self._lock:
            self._arrays = [a for a in self._arrays if id(a) not in bases]

    def held_bytes(self) -> int:
        """Bytes of the arrays the pool holds (busy or free)."""
        with self._lock:
            return sum(a.nbytes for a in self._arrays)

    def clear(self) -> None:
        """Forget every array (those still in use stay valid: they are ordinary arrays)."""
        with self._lock:
            self._arrays.clear()


#: the process-wide pool of the loss wrappers' output buffers.
POOL = BufferPool()
