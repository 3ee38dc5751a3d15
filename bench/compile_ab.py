"""Cold-cache warm-up, serial vs parallel compile, alternating in one run (each in a fresh
process with an empty NUMBA_CACHE_DIR), with the compile seconds of every loss module.

    python -m bench.compile_ab [--rounds 1] [--tree DIR]

Serial: ``LOSSD_COMPILE_JOBS=1`` (the server's import compiles every module in turn);
parallel: one worker process per core (lossd.precompile). Per-module seconds are the
import times of the serial run and the worker times of the parallel run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

CHILD = """
import json, time
t = time.perf_counter()
from lossd.warmup import warm_up
timings = warm_up()
print(json.dumps({"wall": time.perf_counter() - t, "timings": timings}))
"""


def one(jobs: int, tree: str | None) -> dict:
    cache = tempfile.mkdtemp(prefix="lossd-compile-ab-")
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "LOSSD_COMPILE_JOBS": str(jobs)}
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(tree, "service"), os.path.join(tree, "client")])
    try:
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                             check=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tree", default=None, help="a checkout to import lossd from (default: this one)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"serial": [], "parallel": []}
    for r in range(args.rounds):
        order = [("serial", 1), ("parallel", args.jobs)]
        for name, jobs in order if r % 2 == 0 else order[::-1]:
            res = one(jobs, args.tree)
            results[name].append(res)
            print(f"round {r} {name:<8} cold warm-up {res['wall']:.1f} s; load {os.getloadavg()[0]:.1f}",
                  flush=True)
    for name, runs in results.items():
        per = {k: sorted(run["timings"][k] for run in runs)[len(runs) // 2] for k in runs[0]["timings"]}
        top = sorted(per.items(), key=lambda kv: -kv[1])
        print(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
