"""A/B of the real parallel builds (the cache keyed by ``parallel``), in one run.

    # run(call) per call, two checkouts x 1 and 2 threads, rotating order every round:
    .venv/bin/python -m bench.parallel_ab threads --old /tmp/old --old-cache DIR --new /tmp/new \\
        --new-cache DIR --cases mse:1e7,sigmoid_cross_entropy:1e7,euclidean:2000x5000 [--grads input]
    # cold compile of loss modules, each import in a fresh process with an empty cache,
    # checkouts alternating every round:
    .venv/bin/python -m bench.parallel_ab compile --old /tmp/old --new /tmp/new --modules mse,l2_loss

``threads`` needs a warm Numba cache per checkout (``lossd warm`` with NUMBA_CACHE_DIR set):
two checkouts with different helper files must not share one cache directory. It prints the
median per-call time of ``run`` (validation excluded) for each checkout and thread count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench.kernels import Remote, tree_env

IMPORT = "import importlib, sys, time; t = time.perf_counter(); importlib.import_module(sys.argv[1]); " \
         "print(time.perf_counter() - t)"


def cold_import(tree: str, module: str) -> float:
    """Seconds to import ``lossd.losses.<module>`` (or a dotted ``module``) from ``tree`` with an
    empty Numba cache."""
    cache = tempfile.mkdtemp(prefix="lossd-parallel-ab-")
    env = tree_env(2, tree, cache)
    name = module if "." in module else f"lossd.losses.{module}"
    try:
        out = subprocess.run([sys.executable, "-c", IMPORT, name], env=env, capture_output=True, text=True,
                             check=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return float(out.stdout.strip().splitlines()[-1])


def compile_ab(args: argparse.Namespace) -> None:
    print("| module | old cold import s | new cold import s | new/old |")
    print("|---|---|---|---|")
    for module in args.modules.split(","):
        samples: dict[str, list[float]] = {"old": [], "new": []}
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for which in order:
                samples[which].append(cold_import(getattr(args, which), module))
        o, n = statistics.median(samples["old"]), statistics.median(samples["new"])
        print(f"| {module} | {o:.1f} | {n:.1f} | {n / o:.2f} |", flush=True)


def threads_ab(args: argparse.Namespace) -> None:
    workers = [(which, threads) for threads in (1, 2) for which in ("old", "new")]
    remotes = {(w, t): Remote(w, t, "bench.ab_overhead",
                              tree_env(t, getattr(args, w), getattr(args, f"{w}_cache")))
               for w, t in workers}
    print(f"load {os.getloadavg()[0]:.1f} at start")
    print("| loss | size | old 1T | new 1T | old 2T | new 2T | new 2T/1T | new/old 2T | new/old 1T |")
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        for case in args.cases.split(","):
            loss, size = case.split(":")
            samples: dict[tuple[str, int], list[float]] = {w: [] for w in workers}
            for r in range(args.rounds):
                for w in workers[r % len(workers):] + workers[:r % len(workers)]:
                    cmd = {"mode": "run", "loss": loss, "size": size, "budget": args.budget,
                           "grads": args.grads.split(",") if args.grads else None, "reduction": None}
                    samples[w] += remotes[w].ask(cmd)
            m = {w: statistics.median(v) * 1e3 for w, v in samples.items()}
            o1, n1, o2, n2 = m[("old", 1)], m[("new", 1)], m[("old", 2)], m[("new", 2)]
            print(f"| {loss} | {size} | {o1:.2f} | {n1:.2f} | {o2:.2f} | {n2:.2f} | {n2 / n1:.2f} | "
                  f"{n2 / o2:.2f} | {n1 / o1:.2f} |", flush=True)
    finally:
        for remote in remotes.values():
            remote.close()
    print(f"load {os.getloadavg()[0]:.1f} at end; ms per call, medians; {time.strftime('%H:%M:%S')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("threads", "compile"))
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--old-cache", default=None)
    ap.add_argument("--new-cache", default=None)
    ap.add_argument("--cases", default="mse:1e7,sigmoid_cross_entropy:1e7,binary_cross_entropy:1e7")
    ap.add_argument("--modules", default="mse")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--grads", default="", help="lossd gradients, comma-separated (default: all)")
    args = ap.parse_args(argv)
    if args.what == "threads":
        threads_ab(args)
    else:
        compile_ab(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
