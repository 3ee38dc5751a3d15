"""A/B of the warm-cache start: ``lossd serve`` spawn to its ready line (wall) and the
server's CPU seconds (user + system) at that moment, old vs new alternating.

    .venv/bin/python -m bench.startup_ab --base REV [--files a.py,b.py] [--rounds 6] [--cache DIR]

"old" is this tree with REV's version of ``--files`` (default: the start-up modules
app.py, cli.py, warmup.py) written over this tree's for the duration of each old start
and restored right after: both variants then load the very same kernels from the same
Numba cache (those files are not part of the kernel cache's helper digest), so only the
start-up code differs. Do not run tests from this tree meanwhile.

The CPU figure is steadier than the wall time on a loaded machine; the wall time also
shows overlap (work done in parallel on an idle core), which the CPU figure cannot.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Iterator

from bench import proc
from bench.kernels import ROOT

FILES = "service/lossd/app.py,service/lossd/cli.py,service/lossd/warmup.py"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def swapped(files: dict[str, str]) -> Iterator[None]:
    """This tree's ``files`` (path -> text) replaced for the duration, then restored."""
    saved = {path: (Path(ROOT) / path).read_text() for path in files}
    try:
        for path, text in files.items():
            (Path(ROOT) / path).write_text(text)
        yield
    finally:
        for path, text in saved.items():
            (Path(ROOT) / path).write_text(text)


def start(cache: str) -> tuple[float, float]:
    """(spawn to ready seconds, server CPU seconds at ready) of one start of this tree."""
    t = time.perf_counter()
    p, _, _ = proc.lossd(env={"NUMBA_CACHE_DIR": cache})
    wall = time.perf_counter() - t
    cpu = cpu_seconds(p.pid)
    p.stop()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="git revision of the old start-up files")
    parser.add_argument("--files", default=FILES)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cache", default=os.environ.get("NUMBA_CACHE_DIR", ""))
    args = parser.parse_args()
    old_files = {path: subprocess.check_output(["git", "show", f"{args.base}:{path}"], cwd=ROOT, text=True)
                 for path in args.files.split(",")}
    variants = {"old": lambda: swapped(old_files), "new": contextlib.nullcontext}
    start(args.cache)  # the cache warm (a cold one compiles here)
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for r in range(args.rounds):
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            with variants[name]():
                out[name].append(start(args.cache))
            print(f"  {name}: {out[name][-1][0]:.2f} s wall, {out[name][-1][1]:.2f} s CPU", flush=True)
    for name, values in out.items():
        print(f"{name}: median {statistics.median(v[0] for v in values):.2f} s wall, "
              f"{statistics.median(v[1] for v in values):.2f} s CPU to ready ({len(values)} starts)")


if __name__ == "__main__":
    main()
