"""Numba's on-disk cache for lossd kernels: never stale, safe with several writers.

Numba keys a cached kernel on the source file of the jitted function only, so an edit to a
helper it inlines (``kernels/vecmath.py``, ``losses/_blocks.py``, ...) would leave stale
machine code in the cache. :class:`KernelCache` is Numba's ``FunctionCache`` with these
changes:

* the index's source stamp is ``(hash of the function's file, HELPERS digest)`` where the
  digest is a SHA-256 over every helper module a kernel may inline: all of
  ``lossd/kernels/*.py`` and ``lossd/losses/_*.py``. Any helper edit makes every lossd
  index stale, so the next import recompiles (and overwrites the stale entries) instead
  of loading old code. Hashing the ~15 files costs about a millisecond per process.
* the index key carries ``NUMBA_BOUNDSCHECK`` and whether the dispatcher is a
  ``parallel=True`` build: Numba's own key (signature, target, CPU) carries neither, so a
  bounds-checked build could load unchecked code, and the parallel build of a
  :class:`lossd.kernels.jit.Dual` (compiled second) loaded the serial build's machine code
  and never ran its parfor code.
* :meth:`LockedIndexDataCacheFile.save` holds an exclusive ``flock`` on the cache
  directory while it reads, extends and rewrites the index and writes the data file.
  Numba replaces each file atomically (write to a temporary name, ``os.replace``), but
  the read-modify-write of the index is not atomic: two processes compiling different
  signatures of one function (a shared ``jit.block`` body, from two loss modules) could
  both pick data file ``.1.nbc`` and one index entry would then point at the other's
  machine code. With the lock, parallel compile workers can share one cache directory.

:func:`cold_modules` tells, without importing or compiling anything, which modules were not
imported with the current cache (the parallel warm-up compiles those in worker processes;
whoever imports a module records it with :func:`mark_modules`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import numba
from numba.core import config
from numba.core.caching import CacheImpl, FunctionCache, IndexDataCacheFile

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

PACKAGE = Path(__file__).resolve().parents[1]
LOCK_NAME = "lossd-cache.lock"
MARKER = ".lossd-imported"


def helper_files() -> list[Path]:
    """Every module whose code a lossd kernel may inline or call (sorted)."""
    return sorted([*(PACKAGE / "kernels").glob("*.py"), *(PACKAGE / "losses").glob("_*.py")])


@functools.cache
def helpers_digest() -> str:
    """SHA-256 over the names and contents of :func:`helper_files` (once per process)."""
    digest = hashlib.sha256()
    for path in helper_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    """An exclusive advisory lock on ``directory`` (held by one process at a time)."""
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class LockedIndexDataCacheFile(IndexDataCacheFile):
    """Numba's index + data files, with the index update and data write under a lock."""

    def save(self, key: Any, data: Any) -> None:
        with _locked(self._cache_path):
            super().save(key, data)


def stamp(source_stamp: Any) -> tuple[Any, str]:
    """The index stamp of a kernel: its own file's stamp and the helpers' digest."""
    return (source_stamp, helpers_digest())


#: ids of the target contexts a :class:`KernelCache` load has refreshed in this process.
_REFRESHED: set[int] = set()


class KernelCache(FunctionCache):
    """``FunctionCache`` whose entries go stale when any helper module changes, keyed also by
    the bounds-check setting and ``parallel`` (the serial and the parallel build of one
    function share its index file under distinct keys)."""

    def __init__(self, py_func: Any, parallel: bool = False) -> None:
        super().__init__(py_func)
        self._parallel = bool(parallel)
        self._cache_file = LockedIndexDataCacheFile(
            cache_path=self._cache_path, filename_base=self._impl.filename_base,
            source_stamp=stamp(self._impl.locator.get_source_stamp()))

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        """Numba's load, refreshing ``target_context`` only on its first load in this
        process: Numba refreshes before every load (re-scanning its extension registries,
        about a millisecond each, ~140 loads in a warm start); a load only rebuilds machine
        code and needs none of the registries, and a real compile refreshes for itself."""
        if id(target_context) not in _REFRESHED:
            target_context.refresh()
            _REFRESHED.add(id(target_context))
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    def _index_key(self, sig: Any, codegen: Any) -> tuple:
        return (*super()._index_key(sig, codegen), ("boundscheck", bool(config.BOUNDSCHECK)),
                ("parallel", self._parallel))


def _locator(py_file: str) -> Any:
    """Numba's cache locator for functions of ``py_file`` (the same choice Numba makes)."""
    def probe() -> None:  # pragma: no cover - never called; only its code object is read
        pass
    for cls in CacheImpl._locator_classes:
        locator = cls.from_function(probe, py_file)
        if locator is not None:
            return locator
    return None


def _marker(py_file: str) -> tuple[str, str] | None:
    """(path, content) of the marker saying "``py_file`` was imported with this cache"."""
    locator = _locator(py_file)
    if locator is None:
        return None
    modname = os.path.splitext(os.path.basename(py_file))[0]
    state = (stamp(locator.get_source_stamp()), numba.__version__, bool(config.BOUNDSCHECK))
    return (os.path.join(locator.get_cache_path(), modname + MARKER),
            hashlib.sha256(repr(state).encode()).hexdigest())


def is_cached(py_file: str) -> bool:
    """Whether ``py_file`` was imported (its kernels compiled into or loaded from this cache)
    since it or a helper module last changed: its marker file holds the current state.

    A marker, not the kernels' index files: some modules have no kernels of their own (the
    face losses use ``_margin``'s) and leave no index file to look at.
    """
    marker = _marker(py_file)
    if marker is None:
        return False
    try:
        with open(marker[0]) as f:
            return f.read() == marker[1]
    except OSError:
        return False


def mark_cached(py_file: str) -> None:
    """Record that ``py_file`` was imported with this cache (best effort: a read-only cache
    directory keeps no marker)."""
    marker = _marker(py_file)
    if marker is None:
        return
    tmp = f"{marker[0]}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(marker[1])
        os.replace(tmp, marker[0])
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _origin(name: str) -> str | None:
    import importlib.util

    found = importlib.util.find_spec(name)
    return None if found is None else found.origin


def cold_modules(modules: Sequence[str]) -> list[str]:
    """The dotted module names among ``modules`` that are not (freshly) cached."""
    cold = []
    for name in modules:
        origin = _origin(name)
        if origin is None or not is_cached(origin):
            cold.append(name)
    return cold


def mark_modules(modules: Sequence[str]) -> None:
    """:func:`mark_cached` for imported dotted module names whose marker is not current."""
    for name in modules:
        origin = getattr(sys.modules.get(name), "__file__", None)
        if origin is not None and not is_cached(origin):
            mark_cached(origin)
