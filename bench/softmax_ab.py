"""A/B of the softmax-family, face-loss and npair / info_nce kernels: an old lossd checkout vs
this one, with PyTorch eager (forward + backward) and the vectorised NumPy version, float32,
in one run.

Each contender is a worker process with its own thread count; the old checkout is imported
by putting ``OLD/service`` first on PYTHONPATH (``--new`` likewise; default: this checkout).
The parent alternates the contenders for ``--rounds`` rounds and prints per-case medians
and ratios to PyTorch and NumPy.

    git worktree add /tmp/old HEAD~3
    python -m bench.softmax_ab --old /tmp/old [--threads 1,2] [--losses softmax_cross_entropy]

The lossd workers import only the modules of ``--losses`` (not the whole registry): a cold
cache with real parallel builds compiles the registry for many minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from bench.kernels import PREFIX, Remote, tree_env

CASES = {
    "softmax_cross_entropy": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "categorical_cross_entropy": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "softmax_focal": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "f_divergence": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "nll_loss": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "arcface": [dict(n=128, d=128, c=1000), dict(n=1024, d=512, c=10000)],
    "cosface": [dict(n=128, d=128, c=1000), dict(n=1024, d=512, c=10000)],
    "combined_margin": [dict(n=128, d=128, c=1000), dict(n=1024, d=512, c=10000)],
    "npair": [dict(n=200, d=500), dict(n=4096, d=512)],
    "info_nce": [dict(n=200, d=500), dict(n=4096, d=512)],
}
GRADS = {"softmax_cross_entropy": ["input"], "categorical_cross_entropy": ["input", "target"],
         "softmax_focal": ["logits"], "f_divergence": ["input"], "nll_loss": ["input"],
         "npair": ["anchors", "positives"], "info_nce": ["query", "positive_key"]}
FACE_GRADS = ["features", "weight"]
#: environment variable telling a worker which loss modules to import
_LOSSES_ENV = "SOFTMAX_AB_LOSSES"


def _callable(contender: str, loss: str, dims: dict[str, int]):
    from bench import cases

    inputs, params = cases.build(loss, dims)
    grads = GRADS.get(loss, FACE_GRADS)
    if contender in ("old", "new"):
        from lossd.core.evaluate import run
        from lossd.core.validation import prepare

        call = prepare(loss, inputs, params, grads)
        return lambda: run(call)
    if contender == "torch":
        from bench.contenders import torch_step

        return torch_step(loss, inputs, params, grads)[0]
    from bench.contenders import numpy_loss

    f = numpy_loss(loss)
    return lambda: f(inputs, params, frozenset(grads))


def worker(contender: str, threads: int) -> None:
    """Serve ``[loss, dims, seconds]`` lines: time calls for about ``seconds``, reply the
    per-call times."""
    if contender == "torch":
        import torch

        torch.set_num_threads(threads)
    if contender in ("old", "new"):
        import numba

        from lossd.losses import registry

        numba.set_num_threads(threads)
        registry.MODULES = tuple(os.environ[_LOSSES_ENV].split(","))
        registry.load()  # compiles/loads the kernels of these losses only
    current, fn = None, None
    print(PREFIX + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        loss, dims, seconds = json.loads(line)
        if [loss, dims] != current:
            fn = None
            fn = _callable(contender, loss, dims)
            fn()
            current = [loss, dims]
        samples = []
        begin = time.perf_counter()
        while not samples or time.perf_counter() - begin < seconds:
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        print(PREFIX + json.dumps(samples), flush=True)


def _spawn(contender: str, threads: int, old: str, new: str, losses: str) -> Remote:
    tree = {"old": old, "new": new}.get(contender)
    cache = os.environ.get("NUMBA_CACHE_DIR", "/tmp/nc") + "_" + contender if tree else None
    env = tree_env(threads, tree, cache)
    env[_LOSSES_ENV] = losses
    return Remote(contender, threads, "bench.softmax_ab", env)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:8.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", default="/tmp/old_B", help="checkout of the old version")
    parser.add_argument("--new", default="", help="checkout of the new version (default: this one)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--losses", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="per contender per round")
    parser.add_argument("--contenders", default="old,new,torch,numpy")
    parser.add_argument("--worker", default="")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, int(args.threads))
        return
    names = args.contenders.split(",")
    for threads in (int(t) for t in args.threads.split(",")):
        procs = {name: _spawn(name, threads, args.old, args.new, args.losses) for name in names}
        try:
            for loss in args.losses.split(","):
                for dims in CASES[loss]:
                    times: dict[str, list[float]] = {name: [] for name in names}
                    for r in range(args.rounds):
                        order = names[r % len(names):] + names[:r % len(names)]
                        for name in order:
                            time.sleep(0.3)  # idle OpenMP threads of the previous contender stop spinning
                            times[name].append(float(np.median(procs[name].ask([loss, dims, args.seconds]))))
                    med = {name: statistics.median(v) for name, v in times.items()}
                    label = "x".join(f"{k.upper()}={v}" for k, v in dims.items())
                    cells = "  ".join(f"{name} {_fmt(med[name])}" for name in names)
                    ratios = "  ".join(f"new/{ref} {med['new'] / med[ref]:.2f}"
                                       for ref in names if ref != "new" and "new" in med)
                    print(f"{threads}T {loss:26s} {label:18s} {cells}  |  {ratios}", flush=True)
        finally:
            for proc in procs.values():
                proc.proc.kill()


if __name__ == "__main__":
    main()
