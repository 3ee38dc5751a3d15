"""Cold import (compile) time of single loss modules: an old checkout vs a new one, alternating
in one run, each import in a fresh process with an empty NUMBA_CACHE_DIR.

Reports per module the median wall seconds and CPU seconds (user + system of the child:
less sensitive to the load of a shared machine than wall time).

    git worktree add /tmp/old HEAD~3
    python -m bench.cold_import_ab --old /tmp/old --new . --modules softmax_cross_entropy,nll_loss
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

CHILD = "import importlib, time; t = time.perf_counter(); importlib.import_module({!r}); " \
        "print(time.perf_counter() - t)"


def one(tree: str, module: str) -> tuple[float, float]:
    """(wall, cpu) seconds of importing ``lossd.losses.<module>`` from ``tree``, cache empty."""
    cache = tempfile.mkdtemp(prefix="lossd-cold-import-")
    paths = [os.path.join(tree, "service"), os.path.join(tree, "client")]
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": os.pathsep.join(paths)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run([sys.executable, "-c", CHILD.format("lossd.losses." + module)], env=env,
                             capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return float(out.stdout.strip().splitlines()[-1]), cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", required=True, help="checkout of the old version")
    parser.add_argument("--new", default=".", help="checkout of the new version")
    parser.add_argument("--modules", required=True, help="comma-separated lossd.losses module names")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    for module in args.modules.split(","):
        runs: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        for r in range(args.rounds):
            for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                runs[name].append(one(trees[name], module))
        cells = "  ".join(f"{name} {statistics.median(w for w, _ in v):6.1f} s wall "
                          f"{statistics.median(c for _, c in v):6.1f} s cpu" for name, v in runs.items())
        print(f"{module:24s} {cells}  (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
