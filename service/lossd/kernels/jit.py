"""The one place that owns every Numba option.

Nothing else in lossd writes ``@numba.njit(...)`` options by hand: loss modules use
:func:`kernel` (serial), :func:`dual` (a serial and a parallel build of one function,
chosen by size at call time) and :func:`inline` (small helpers inlined into kernels).

Options, and why:
* on-disk cache (``NUMBA_CACHE_DIR``, :class:`lossd.kernels.jitcache.KernelCache`), so a
  restart loads in milliseconds. Entries go stale when the kernel's own file or any
  helper module (``kernels/*.py``, ``losses/_*.py``) changes, and several processes may
  compile into one cache directory at once (the parallel warm-up). The cache key carries
  ``parallel`` (a :class:`Dual`'s two builds are distinct entries) but no other option:
  rename a kernel when its other options change.
* ``nogil=True``: kernels run in worker threads with the GIL released.
* ``fastmath`` = reassoc, contract, nsz, arcp: reassociation lets LLVM vectorise
  reductions; ``nnan``/``ninf`` stay off so NaN/Inf checks and IEEE overflow survive.
* ``error_model="numpy"``: division by zero gives Inf/NaN, no Python exception check.
* Eager signatures: kernels compile at import of their module's warm-up, never on a
  request (a server's parallel builds may load just after ready, see
  :func:`defer_parallel_builds`; until then their serial builds serve). Read-only array
  types are used for inputs: NumPy views of request bytes are read-only, and writable
  arrays dispatch to the same compiled code.
* Threading layer ``omp`` with ``OMP_WAIT_POLICY=PASSIVE``: safe when several Python
  threads enter parallel kernels at once (the default ``workqueue`` layer aborts), and
  no spinning idle threads stall the next call. Without a loadable layer (no OpenMP
  runtime) :func:`parallel_available` is False and the serial builds serve every size.
"""

from __future__ import annotations

import functools
import logging
import os
import threading

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")

from typing import Any, Callable, Sequence  # noqa: E402

import numba  # noqa: E402
from numba import types  # noqa: E402
from numba.core import typeinfer  # noqa: E402

from lossd.kernels.jitcache import KernelCache  # noqa: E402

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})
_COMMON: dict[str, Any] = dict(nogil=True, fastmath=set(FASTMATH), error_model="numpy",
                               boundscheck=None)

#: inputs with at least this many elements run the parallel build of a dual kernel.
PARALLEL_THRESHOLD = int(os.environ.get("LOSSD_PARALLEL_THRESHOLD", 1 << 16))

FLOAT_TYPES = (types.float32, types.float64)
f64 = types.float64
i64 = types.int64
i32 = types.int32
boolean = types.boolean
void = types.void

#: every dispatcher created through this module, for warm-up accounting.
DISPATCHERS: list[Any] = []


def ro(dtype: types.Type, ndim: int = 1) -> types.Array:
    """A read-only C-contiguous array type (inputs)."""
    return types.Array(dtype, ndim, "C", readonly=True)


def rw(dtype: types.Type, ndim: int = 1) -> types.Array:
    """A writable C-contiguous array type (outputs)."""
    return types.Array(dtype, ndim, "C")


def _njit(fn: Callable, signatures: Sequence[Any] | None = None, **options: Any) -> Any:
    """``numba.njit(signatures, cache=True, **_COMMON, **options)(fn)`` with lossd's cache
    (:class:`KernelCache` in place of Numba's): eager signatures compile after the cache is
    attached, as ``numba.njit`` itself does it."""
    dispatcher = numba.njit(**_COMMON, **options)(fn)
    dispatcher._cache = KernelCache(fn, parallel=bool(options.get("parallel", False)))
    if signatures is not None:
        _compile_eager(dispatcher, signatures)
    return dispatcher


def _compile_eager(dispatcher: Any, signatures: Sequence[Any]) -> None:
    """Compile (or load from the cache) ``signatures``, then forbid any other."""
    with typeinfer.register_dispatcher(dispatcher):
        for signature in signatures:
            dispatcher.compile(signature)
        dispatcher.disable_compile()


def for_floats(build: Callable[[types.Type], Any]) -> list[Any]:
    """One signature per float type: ``build(float32)`` and ``build(float64)``."""
    return [build(f) for f in FLOAT_TYPES]


def kernel(signatures: Sequence[Any]) -> Callable[[Callable], Any]:
    """A serial, eagerly compiled, GIL-free kernel."""
    def wrap(fn: Callable) -> Any:
        dispatcher = _njit(fn, signatures)
        DISPATCHERS.append(dispatcher)
        return dispatcher
    return wrap


class Dual:
    """A serial and a parallel build of one function (its loops use ``numba.prange``).

    ``call(size, *args)`` runs the parallel build when ``size >= PARALLEL_THRESHOLD``:
    thread start-up (tens of microseconds) would dwarf a small input.

    The two builds are distinct cache entries (:class:`KernelCache` keys by ``parallel``;
    Numba's own key ignores it, and the parallel build used to load the serial build's
    machine code and run serially). Numba's parfor passes copy a ``prange`` body's IR
    several times, so a large inlined body compiles several times slower in the parallel
    build: keep the body a call of a :func:`block` function.

    Under :func:`defer_parallel_builds` the parallel build compiles (loads) only when
    :func:`load_deferred_parallel_builds` runs; until then every size runs the serial build.
    """

    def __init__(self, fn: Callable, signatures: Sequence[Any]) -> None:
        self._signatures = list(signatures)
        self.serial = _njit(fn, self._signatures)
        self.parallel = _njit(fn, parallel=True)
        DISPATCHERS.extend([self.serial, self.parallel])
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self._large = self.serial  # the build for sizes at or above the threshold
        if not _DEFERRAL.add(self):
            self.compile_parallel()

    def compile_parallel(self) -> int:
        """Compile (or load) the parallel build's signatures and use it from now on; return
        how many signatures that was (0, and the serial build stays, when Numba has no
        threading layer: see :func:`parallel_available`)."""
        if not parallel_available():
            return 0
        _compile_eager(self.parallel, self._signatures)
        self._large = self.parallel
        return len(self._signatures)

    def call(self, size: int, *args: Any) -> Any:
        """Run the build that suits an input of ``size`` elements."""
        return self.pick(size)(*args)

    def pick(self, size: int) -> Any:
        """The build that suits an input of ``size`` elements (``pick(size)(*args)`` saves
        the argument re-packing of :meth:`call` on the per-call path)."""
        return self._large if size >= PARALLEL_THRESHOLD else self.serial


@functools.cache
def parallel_available() -> bool:
    """Whether Numba can load its threading layer (``NUMBA_THREADING_LAYER``, ``omp`` here:
    the OpenMP runtime, libgomp on Linux). Without one a parallel build can neither compile
    nor run, so every :class:`Dual` keeps its serial build for every size and one warning
    says so (a pip install on a system without libgomp still serves, single-threaded)."""
    try:
        numba.get_num_threads()  # loads the threading layer and starts its pool
    except (ValueError, OSError, ImportError, RuntimeError) as exc:
        logging.getLogger("lossd.kernels").warning(
            "no Numba threading layer could be loaded; every kernel runs its serial build "
            "(install the OpenMP runtime, e.g. libgomp1, for the parallel builds)",
            extra={"threading_layer": os.environ.get("NUMBA_THREADING_LAYER", ""),
                   "error": str(exc).splitlines()[0]})
        return False
    return True


class _Deferral:
    """The :class:`Dual` kernels whose parallel build waits (``pending`` is None: none waits,
    new kernels compile both builds at once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[Dual] | None = None
        self.loaded = 0

    def add(self, dual: Dual) -> bool:
        """Queue ``dual``'s parallel build if deferring; whether it was queued."""
        with self.lock:
            if self.pending is None:
                return False
            self.pending.append(dual)
            return True

    def take(self) -> Dual | None:
        """The next queued kernel; None (and deferral ends) when the queue is empty."""
        with self.lock:
            if not self.pending:
                self.pending = None
                return None
            return self.pending.pop(0)


_DEFERRAL = _Deferral()


def defer_parallel_builds() -> None:
    """From now on a new :class:`Dual` compiles (or loads) only its serial build, which then
    serves every size, until :func:`load_deferred_parallel_builds`. The server uses this to
    report ready after the serial builds, loading the parallel ones just after (about half
    the load time of a warm start)."""
    with _DEFERRAL.lock:
        if _DEFERRAL.pending is None:
            _DEFERRAL.pending = []


def load_deferred_parallel_builds() -> int:
    """Compile (or load) every deferred parallel build, switch each kernel to it, end the
    deferral; return the number of signatures loaded."""
    count = 0
    while (dual := _DEFERRAL.take()) is not None:
        count += dual.compile_parallel()
    with _DEFERRAL.lock:
        _DEFERRAL.loaded += count
    return count


def deferred_signatures_loaded() -> int:
    """Signatures :func:`load_deferred_parallel_builds` has loaded in this process."""
    return _DEFERRAL.loaded


def dual(signatures: Sequence[Any]) -> Callable[[Callable], Dual]:
    """Decorator form of :class:`Dual`."""
    return lambda fn: Dual(fn, signatures)


def inline(fn: Callable) -> Any:
    """A small helper for use inside kernels (compiled lazily, inlined by LLVM)."""
    return _njit(fn, inline="always")


def block(fn: Callable) -> Any:
    """A large kernel body compiled once per argument types and *called* from kernels (not
    inlined into their Numba IR): the per-block loop of a :func:`dual` kernel, shared by its
    serial and parallel builds. Numba's parfor passes copy a prange body's IR several
    times, so a body with inlined exp/log math made parallel builds compile 5x slower;
    ``for b in prange(n_blocks): total += body(b, ...)`` keeps the parfor tiny."""
    return _njit(fn)


prange = numba.prange


def compiled_signature_count() -> int:
    """How many signatures the registered dispatchers have compiled (or loaded)."""
    return sum(len(d.signatures) for d in DISPATCHERS)
