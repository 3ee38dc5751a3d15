"""A/B of request validation (``lossd.core.validation.prepare``) between this tree and
another checkout: one worker process per tree (same threads), cases alternating in
rounds, median per case. Inputs are float32 and valid; each case validates the loss's
float inputs as a server would (read-only arrays on received bytes).

    .venv/bin/python -m bench.validation_ab --base-tree /tmp/lossd_D_base [--new-tree DIR] [--rounds 5]
        [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

from bench.kernels import tree_env

CASES = {"binary_cross_entropy": ("input", "target"), "mse": ("input", "target"),
         "kl_div": ("input", "target")}
SIZES = (100_000, 10_000_000)


def inputs(loss: str, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    out = {}
    for name in CASES[loss]:
        a = rng.uniform(0.05, 0.95, n).astype(np.float32)
        a.flags.writeable = False  # as np.frombuffer on request bytes
        out[name] = a
    return out


def child() -> None:
    """``loss n reps`` per stdin line -> the per-call seconds as one JSON line."""
    from lossd.core.validation import prepare

    data: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        loss, n, reps = line.split()
        x = data.setdefault((loss, int(n)), inputs(loss, int(n)))
        prepare(loss, x)
        times = []
        for _ in range(int(reps)):
            t = time.perf_counter()
            prepare(loss, x)
            times.append(time.perf_counter() - t)
        print(json.dumps(times), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-tree", required=True)
    parser.add_argument("--new-tree", default=None, help="default: this tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child()
        return
    workers = {name: subprocess.Popen([sys.executable, "-m", "bench.validation_ab", "--child",
                                       "--base-tree", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, env=tree_env(args.threads, tree))
               for name, tree in (("base", args.base_tree), ("new", args.new_tree))}
    for w in workers.values():
        assert w.stdout is not None
        w.stdout.readline()
    results: dict[tuple[str, str, int], list[float]] = {}
    try:
        for r in range(args.rounds):
            for loss in CASES:
                for n in SIZES:
                    reps = 200 if n < 1_000_000 else 5
                    for name in (list(workers) if r % 2 == 0 else list(workers)[::-1]):
                        w = workers[name]
                        assert w.stdin is not None and w.stdout is not None
                        w.stdin.write(f"{loss} {n} {reps}\n")
                        w.stdin.flush()
                        results.setdefault((loss, name, n), []).extend(json.loads(w.stdout.readline()))
    finally:
        for w in workers.values():
            w.kill()
    print(f"prepare(), float32 inputs, {args.threads} threads, {args.rounds} alternating rounds: median")
    for loss in CASES:
        for n in SIZES:
            base = statistics.median(results[(loss, "base", n)])
            new = statistics.median(results[(loss, "new", n)])
            print(f"  {loss:22s} {n:>9}  base {base * 1e3:9.3f} ms  new {new * 1e3:9.3f} ms  "
                  f"new/base {new / base:5.2f}")


if __name__ == "__main__":
    main()
