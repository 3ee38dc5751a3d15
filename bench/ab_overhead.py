"""A/B of the per-call path: an old checkout vs this tree vs the NumPy contender.

    git worktree add /tmp/old HEAD~3
    .venv/bin/python -m bench.ab_overhead --old /tmp/old [--new /tmp/new] --losses mse,l1,l2_loss \\
        --sizes 1e3,1e5,1e7 --threads 1,2 --rounds 5 [--grads input] [--reduction none]

Each contender runs in its own process per thread count (``old`` imports lossd from
``--old``/service, ``new`` from this tree, ``numpy`` runs bench/contenders.py); the parent
asks one measurement at a time, rotating the contender order every round, and prints the
median per-call time of ``run`` (kernel on a validated call), ``evaluate`` (validation
included) and NumPy, float32, all gradients. ``--cpu``: the calling thread's CPU time
instead of wall time (steadier on a loaded machine; kernels at 1 thread only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from bench.kernels import PREFIX, ROOT, Remote, tree_env


def _per_call(fn, budget: float, clock=time.perf_counter) -> list[float]:
    """Seconds per call (of ``clock``): batches of m calls (a batch >= 1 ms), for ``budget``
    seconds."""
    fn()
    t = time.perf_counter()
    fn()
    m = max(1, int(1e-3 / max(time.perf_counter() - t, 1e-7)))
    out: list[float] = []
    end = time.perf_counter() + budget
    while len(out) < 3 or time.perf_counter() < end:
        t = clock()
        for _ in range(m):
            fn()
        out.append((clock() - t) / m)
    return out


def dims_of(loss: str, size: str) -> dict[str, int]:
    """``"1000"`` -> {"n": 1000}; ``"200x500"`` -> the case family's names, e.g. {"n": 200, "d": 500}."""
    from bench import cases

    names = list(cases.SIZES[cases.CASES[loss].family][0][1])
    return dict(zip(names, (int(float(v)) for v in size.split("x"))))


def _callable(contender: str, mode: str, loss: str, size: str, grads: list[str] | None = None,
              reduction: str | None = None):
    """The timed call; ``grads`` (None: all) and ``reduction`` (None: the loss's default) apply
    to lossd only (the NumPy contender computes every gradient it has)."""
    from bench import cases

    inputs, params = cases.build(loss, dims_of(loss, size))
    if reduction:
        params = {**params, "reduction": reduction}
    if contender == "numpy":
        from bench.contenders import numpy_loss

        f, wanted = numpy_loss(loss), frozenset(inputs)  # every gradient the contender has
        return lambda: f(inputs, params, wanted)
    from lossd.core.evaluate import evaluate, run
    from lossd.core.validation import prepare

    if mode == "evaluate":
        return lambda: evaluate(loss, inputs, params, grads=grads)
    call = prepare(loss, inputs, params, grads)
    return lambda: run(call)


def worker(contender: str, threads: int) -> None:
    if contender != "numpy":
        import numba

        numba.set_num_threads(threads)
        from lossd.losses import registry

        registry.load()
    sys.stdout.write(PREFIX + "{}\n")
    sys.stdout.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        fn = _callable(contender, cmd["mode"], cmd["loss"], cmd["size"], cmd.get("grads"),
                       cmd.get("reduction"))
        clock = time.thread_time if cmd.get("cpu") else time.perf_counter
        sys.stdout.write(PREFIX + json.dumps(_per_call(fn, cmd["budget"], clock)) + "\n")
        sys.stdout.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--old", default="/tmp/old_C", help="checkout of the old commit")
    ap.add_argument("--new", default=ROOT, help="checkout of the new state (default: this tree)")
    ap.add_argument("--losses", default="mse,l1,l2_loss")
    ap.add_argument("--sizes", default="1e3,1e5,1e7", help="elements, or dims like 200x500")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.3)
    ap.add_argument("--grads", default="", help="lossd gradients, comma-separated (default: all)")
    ap.add_argument("--reduction", default="", help="lossd reduction (default: the loss's)")
    ap.add_argument("--cpu", action="store_true", help="thread CPU time instead of wall time")
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, int(args.threads))
        return 0
    print("| threads | loss | size | old run | new run | old evaluate | new evaluate | NumPy | "
          "new/old run | new/old evaluate | new run/NumPy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for threads in (int(t) for t in args.threads.split(",")):
        trees = {"old": args.old, "new": args.new}
        remotes = {c: Remote(c, threads, "bench.ab_overhead", tree_env(threads, trees.get(c)))
                   for c in ("old", "new", "numpy")}
        jobs = [("old", "run"), ("new", "run"), ("old", "evaluate"), ("new", "evaluate"), ("numpy", "-")]
        for loss in args.losses.split(","):
            for size in args.sizes.split(","):
                samples: dict[tuple[str, str], list[float]] = {j: [] for j in jobs}
                for r in range(args.rounds):
                    for c, mode in jobs[r % len(jobs):] + jobs[:r % len(jobs)]:
                        cmd = {"mode": mode, "loss": loss, "size": size, "budget": args.budget,
                               "grads": args.grads.split(",") if args.grads else None,
                               "reduction": args.reduction or None, "cpu": args.cpu}
                        samples[(c, mode)] += remotes[c].ask(cmd)
                med = {j: statistics.median(v) * 1e6 for j, v in samples.items()}
                o_r, n_r, o_e, n_e, num = (med[j] for j in jobs)
                print(f"| {threads} | {loss} | {size} | {o_r:.1f} | {n_r:.1f} | {o_e:.1f} | {n_e:.1f} | "
                      f"{num:.1f} | {n_r / o_r:.2f} | {n_e / o_e:.2f} | {n_r / num:.2f} |", flush=True)
        for r in remotes.values():
            r.close()
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
