"""Giving freed memory back to the operating system after large requests.

A large gRPC request arrives as many small transport buffers; glibc keeps their freed
chunks in its arenas (the heap is fragmented, so its automatic trim at the top of the
heap does not return them) and the RSS stays up by about the payload until the next
request reuses them. ``malloc_trim(0)`` returns every free page of every arena
(``madvise(MADV_DONTNEED)``). It costs a walk over the arenas (well under a millisecond
for a few hundred MiB), so the data plane calls it only after large requests.

Without glibc (musl, macOS) :func:`trim` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any, Callable


def _malloc_trim() -> Callable[[int], Any] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return free heap pages to the OS (glibc ``malloc_trim(0)``); False when unavailable."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
