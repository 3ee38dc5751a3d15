"""Parallel compile of a cold Numba cache: one worker process per core.

Numba compiles with the GIL held, so threads do not help; processes do. When loss
modules are not in the on-disk cache (:func:`lossd.kernels.jitcache.cold_modules`), up to
``jobs`` worker processes (``python -m lossd.precompile --worker``, the same environment:
``NUMBA_CACHE_DIR``, ``NUMBA_BOUNDSCHECK``, ...) take the cold modules from a queue, the
slowest to compile first, and import each (its eager signatures compile into the shared
cache, see :class:`lossd.kernels.jitcache.KernelCache` for why concurrent writers are
safe). The caller then imports everything from the cache.

A worker that fails (import error, crash) fails the whole compile with its stderr: never a
silent fall-back to compiling serially. A warm cache costs one small read per module
(milliseconds) and starts no process.

``python -m lossd.precompile [--jobs N]`` (``lossd warm``) compiles a cold cache and exits:
``make test`` and ``make boundscheck`` run it before pytest.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import selectors
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Sequence

from lossd.kernels import jitcache
from lossd.losses.registry import MODULES

log = logging.getLogger("lossd.warmup")

PACKAGE = "lossd.losses."
#: kernel modules outside the loss modules with eager kernels of their own (imported by the
#: request path, e.g. the label range check of ``finite``).
KERNEL_MODULES = ("lossd.kernels.finite", "lossd.kernels.reduction")

#: the slowest modules to compile, slowest first (the rest take ~1-8 s): the queue starts
#: with these so that no long module is left for the end.
SLOW_FIRST = ("softmax_cross_entropy", "poisson_nll", "softmax_focal", "f_divergence", "sigmoid_focal",
              "triplet_margin", "kl_div", "binary_cross_entropy", "sigmoid_cross_entropy", "gaussian_nll",
              "soft_margin", "arcface", "combined_margin", "cosface", "sphereface", "l_softmax")


@dataclass
class Outcome:
    """What a parallel compile did: module -> seconds in its worker, wall time, jobs."""

    seconds: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    jobs: int = 0
    compilations: int = 0


#: the outcome of the last parallel compile in this process (for the jit report).
LAST = Outcome()


def default_jobs() -> int:
    """Worker processes: ``LOSSD_COMPILE_JOBS`` or one per CPU this process may run on."""
    env = os.environ.get("LOSSD_COMPILE_JOBS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def targets(modules: Sequence[str] = MODULES) -> list[str]:
    """Dotted names of the kernel modules and of the loss ``modules`` (short names)."""
    return [*KERNEL_MODULES, *(PACKAGE + m for m in modules)]


def cold(modules: Sequence[str] = MODULES) -> list[str]:
    """The modules (dotted names) that would compile on import, slowest first."""
    rank = {PACKAGE + m: i for i, m in enumerate(SLOW_FIRST)}
    return sorted(jitcache.cold_modules(targets(modules)), key=lambda m: rank.get(m, len(rank)))


class _Worker:
    """One ``python -m lossd.precompile --worker`` process fed module names on stdin."""

    def __init__(self) -> None:
        self.stderr: IO[bytes] = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "lossd.precompile", "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, bufsize=1)
        self.module: str | None = None

    def send(self, module: str | None) -> None:
        assert self.proc.stdin is not None
        self.module = module
        if module is None:
            self.proc.stdin.close()
        else:
            self.proc.stdin.write(module + "\n")
            self.proc.stdin.flush()

    def failure(self) -> str:
        self.proc.wait()
        self.stderr.seek(0)
        tail = self.stderr.read().decode(errors="replace")[-4000:]
        return (f"compile worker (pid {self.proc.pid}) failed on {self.module!r}, "
                f"exit {self.proc.returncode}:\n{tail}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def compile_parallel(modules: Sequence[str], jobs: int) -> Outcome:
    """Compile ``modules`` (dotted names, in queue order) in ``jobs`` worker processes.

    Raises RuntimeError naming the module and the worker's stderr if any worker fails.
    """
    start = time.perf_counter()
    queue = list(modules)
    outcome = Outcome(jobs=min(jobs, len(queue)))
    workers = [_Worker() for _ in range(outcome.jobs)]
    sel = selectors.DefaultSelector()
    try:
        for worker in workers:
            assert worker.proc.stdout is not None
            sel.register(worker.proc.stdout, selectors.EVENT_READ, worker)
            worker.send(queue.pop(0))
        busy = len(workers)
        while busy:
            for key, _ in sel.select():
                worker = key.data
                line = key.fileobj.readline()
                if not line.startswith("compiled "):
                    raise RuntimeError(worker.failure())
                _, module, seconds, count = line.split()
                outcome.seconds[module] = float(seconds)
                outcome.compilations += int(count)
                worker.send(queue.pop(0) if queue else None)
                if worker.module is None:
                    sel.unregister(key.fileobj)
                    busy -= 1
        for worker in workers:
            if worker.proc.wait() != 0:
                raise RuntimeError(worker.failure())
    finally:
        sel.close()
        for worker in workers:
            worker.kill()
    outcome.wall = time.perf_counter() - start
    return outcome


def compile_cold(jobs: int | None = None, min_modules: int = 2) -> Outcome:
    """Compile the cold loss modules in parallel when there are at least ``min_modules`` of
    them and more than one job; otherwise do nothing (the importer compiles them)."""
    global LAST
    jobs = default_jobs() if jobs is None else jobs
    modules = cold()
    if jobs < 2 or len(modules) < max(min_modules, 1):
        return Outcome(jobs=0)
    LAST = outcome = compile_parallel(modules, jobs)
    slowest = sorted(outcome.seconds.items(), key=lambda kv: -kv[1])[:3]
    log.info("kernels compiled in parallel", extra={
        "modules": len(outcome.seconds), "jobs": outcome.jobs, "seconds": round(outcome.wall, 3),
        "compile_seconds": round(sum(outcome.seconds.values()), 3), "compilations": outcome.compilations,
        "slowest": {k: round(v, 3) for k, v in slowest}})
    return outcome


def _worker() -> int:
    """Import each module named on stdin (compiling its eager signatures and the helpers
    they call); answer one line each. (Its examples are not run: that would resolve loss
    ids through the registry, which imports every module.)"""
    from lossd.kernels.jit import DISPATCHERS

    for line in sys.stdin:
        module = line.strip()
        start = time.perf_counter()
        before = sum(sum(d.stats.cache_misses.values()) for d in DISPATCHERS)
        importlib.import_module(module)
        jitcache.mark_modules([module])
        count = sum(sum(d.stats.cache_misses.values()) for d in DISPATCHERS) - before
        print(f"compiled {module} {time.perf_counter() - start:.3f} {count}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossd warm", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker()
    todo = cold()
    outcome = compile_cold(args.jobs, min_modules=1)
    if todo and not outcome.jobs:  # one job: compile here
        start = time.perf_counter()
        for module in todo:
            importlib.import_module(module)
        jitcache.mark_modules(todo)
        outcome.wall = time.perf_counter() - start
    print(f"lossd warm: {len(todo)} of {len(targets())} modules compiled in {outcome.wall:.1f}s "
          f"({outcome.jobs or 1} process(es)); Numba cache {os.environ.get('NUMBA_CACHE_DIR') or 'in tree'}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
