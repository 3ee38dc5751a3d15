"""A/B of the softmax-family and face-loss kernels: an old lossd checkout vs this one, with
PyTorch eager (forward + backward) and the vectorised NumPy version, float32, in one run.

Each contender is a worker process with its own thread count; the old checkout is imported
by putting ``OLD/service`` first on PYTHONPATH (``--new`` likewise; default: this checkout).
The parent alternates the contenders for ``--rounds`` rounds and prints per-case medians
and ratios to PyTorch and NumPy.

    git worktree add /tmp/old HEAD~3
    python -m bench.softmax_ab --old /tmp/old [--threads 1,2] [--losses softmax_cross_entropy]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CASES = {
    "softmax_cross_entropy": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "categorical_cross_entropy": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "softmax_focal": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "f_divergence": [dict(n=1000, c=100), dict(n=4096, c=1000), dict(n=65536, c=10)],
    "arcface": [dict(n=128, d=128, c=1000), dict(n=1024, d=512, c=10000)],
    "cosface": [dict(n=128, d=128, c=1000), dict(n=1024, d=512, c=10000)],
    "combined_margin": [dict(n=128, d=128, c=1000), dict(n=1024, d=512, c=10000)],
}
GRADS = {"softmax_cross_entropy": ["input"], "categorical_cross_entropy": ["input", "target"],
         "softmax_focal": ["logits"], "f_divergence": ["input"]}
FACE_GRADS = ["features", "weight"]


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
        import torch

        from bench.contenders import torch_loss

        f = torch_loss(loss)
        tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
        leaves = [tensors[g].requires_grad_() for g in grads]

        def step():
            for leaf in leaves:
                leaf.grad = None
            f(tensors, params).backward()
        return step
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

        numba.set_num_threads(threads)
        from lossd import warmup  # noqa: F401 - compiles/loads every kernel
    current, fn = None, None
    print("ready", flush=True)
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
        print(json.dumps(samples), flush=True)


def _spawn(contender: str, threads: int, old: str, new: str) -> subprocess.Popen:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    tree = {"old": old, "new": new}.get(contender)
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(tree, "service"), os.getcwd()])
        env["NUMBA_CACHE_DIR"] = env.get("NUMBA_CACHE_DIR", "/tmp/nc") + "_" + contender
    proc = subprocess.Popen([sys.executable, "-m", "bench.softmax_ab", "--worker", contender,
                             "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _ask(proc: subprocess.Popen, loss: str, dims: dict[str, int], seconds: float) -> list[float]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps([loss, dims, seconds]) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


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
        procs = {name: _spawn(name, threads, args.old, args.new) for name in names}
        try:
            for loss in args.losses.split(","):
                for dims in CASES[loss]:
                    times: dict[str, list[float]] = {name: [] for name in names}
                    for r in range(args.rounds):
                        order = names[r % len(names):] + names[:r % len(names)]
                        for name in order:
                            time.sleep(0.3)  # idle OpenMP threads of the previous contender stop spinning
                            times[name].append(float(np.median(_ask(procs[name], loss, dims, args.seconds))))
                    med = {name: statistics.median(v) for name, v in times.items()}
                    label = "x".join(f"{k.upper()}={v}" for k, v in dims.items())
                    cells = "  ".join(f"{name} {_fmt(med[name])}" for name in names)
                    ratios = "  ".join(f"new/{ref} {med['new'] / med[ref]:.2f}"
                                       for ref in names if ref != "new" and "new" in med)
                    print(f"{threads}T {loss:26s} {label:18s} {cells}  |  {ratios}", flush=True)
        finally:
            for proc in procs.values():
                proc.kill()


if __name__ == "__main__":
    main()
