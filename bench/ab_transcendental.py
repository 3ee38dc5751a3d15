"""A/B of the elementwise transcendental losses: this tree vs an older lossd vs PyTorch eager.

Forward + all gradients (bench.cases' inputs and gradient lists), float32, at the given
sizes and thread counts. Each contender runs in its own worker process per thread count
(NUMBA_NUM_THREADS / torch threads pinned); the parent asks one worker at a time, rotating
the order every round, and reports medians of per-round medians, plus the STREAM-style
triad bandwidth of this machine for the % of memory bandwidth at the largest size.

    git worktree add /tmp/old_lossd <commit>
    python -m bench.ab_transcendental --old /tmp/old_lossd [--threads 1,2] [--sizes 1e5,1e7]
    python -m bench.ab_transcendental --old /tmp/old_lossd --subsets --threads 1 --sizes 1e5

``--subsets``: every subset of the differentiable inputs as the requested gradients, with
reduction mean and none (unrequested outputs must never make a kernel slower), instead of
the bench case's gradients and default reduction.

The old tree's ``lossd`` is imported through PYTHONPATH (its ``service/``), with its own
NUMBA_CACHE_DIR (``--old-cache``; the new tree's is ``--cache``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time

from bench.kernels import PREFIX, ROOT, Remote, tree_env, triad

LOSSES = ("binary_cross_entropy", "sigmoid_cross_entropy", "soft_margin", "sigmoid_focal", "kl_div",
          "poisson_nll", "gaussian_nll")
MODULE = "bench.ab_transcendental"


def _differentiable(loss: str, inputs: dict) -> list[str]:
    from lossd.losses.registry import BY_ID

    return [i.name for i in BY_ID[loss].inputs if i.differentiable and i.name in inputs]


def _case(loss: str, n: int):
    """(inputs, params, grads): bench.cases' inputs; every differentiable float input, as
    ``make bench`` does (BCE: input only, PyTorch has no target gradient)."""
    from bench import cases

    inputs, params = cases.build(loss, {"n": n})
    case = cases.CASES[loss]
    grads = list(case.grads) if case.grads is not None else _differentiable(loss, inputs)
    return inputs, params, grads


def _variants(loss: str) -> list[tuple[list[str], str] | None]:
    """(grads, reduction) of --subsets: every subset of the differentiable inputs, largest
    first, with reduction mean and none."""
    inputs, _, _ = _case(loss, 4)
    names = _differentiable(loss, inputs)
    subsets = [list(c) for r in range(len(names), -1, -1) for c in itertools.combinations(names, r)]
    return [(g, red) for red in ("mean", "none") for g in subsets]


def _make(contender: str, loss: str, n: int, variant=None):
    inputs, params, grads = _case(loss, n)
    if variant is not None:
        grads, params = variant[0], {**params, "reduction": variant[1]}
    if contender == "torch":
        from bench.contenders import torch_step

        return torch_step(loss, inputs, params, grads)[0]
    from lossd.core.evaluate import run
    from lossd.core.validation import prepare

    call = prepare(loss, inputs, params, grads)
    return lambda: run(call)


def worker(contender: str, threads: int) -> None:
    if contender == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        import numba

        numba.set_num_threads(threads)
        from lossd import warmup  # noqa: F401 - compiles or loads every kernel
    current: tuple | None = None
    fn = None
    print(PREFIX + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "triad":
            print(PREFIX + json.dumps({"bw": max(triad(cmd["n"], 5))}), flush=True)
            continue
        variant = cmd.get("variant")
        key = (cmd["loss"], cmd["n"], json.dumps(variant))
        if key != current:
            fn, current = None, None
            fn, current = _make(contender, cmd["loss"], cmd["n"], variant), key
            fn()
        reps = max(1, int(2e-3 / max(cmd.get("hint", 1e-3), 1e-6)))
        samples = []
        for _ in range(cmd["samples"]):
            t = time.perf_counter()
            for _ in range(reps):
                fn()
            samples.append((time.perf_counter() - t) / reps)
        inputs, _, grads = _case(cmd["loss"], 4)
        grads = variant[0] if variant is not None else grads
        print(PREFIX + json.dumps({"median": statistics.median(samples), "arrays": len(inputs) + len(grads)}),
              flush=True)


def _measure(workers: dict, loss: str, n: int, variant, rounds: int) -> tuple[dict[str, float], int]:
    """Median seconds per contender (rounds of 3 samples, order rotated every round) and the
    number of float32 arrays a call moves (inputs + requested gradients)."""
    per: dict[str, list[float]] = {name: [] for name in workers}
    arrays = 0
    hint = {name: 1e-3 for name in workers}
    names = list(workers)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            reply = workers[name].ask({"op": "run", "loss": loss, "n": n, "samples": 3, "hint": hint[name],
                                       "variant": variant})
            arrays = reply.get("arrays", arrays)
            per[name].append(reply["median"])
            hint[name] = reply["median"]
    return {k: statistics.median(v) for k, v in per.items()}, arrays


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--old")
    ap.add_argument("--sizes", default="1e5,1e7")
    ap.add_argument("--losses", default=",".join(LOSSES))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--subsets", action="store_true", help="every grads subset x reduction mean/none "
                    "(lossd old/new only)")
    ap.add_argument("--cache", default="/tmp/ab_transcendental_cache", help="NUMBA_CACHE_DIR of the new tree")
    ap.add_argument("--old-cache", default="/tmp/ab_transcendental_cache_old")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, int(args.threads))
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    for threads in [int(t) for t in args.threads.split(",")]:
        workers = {"new": Remote("lossd", threads, MODULE, tree_env(threads, ROOT, args.cache)),
                   "old": Remote("lossd", threads, MODULE, tree_env(threads, args.old, args.old_cache))}
        if not args.subsets:
            workers["torch"] = Remote("torch", threads, MODULE, tree_env(threads, ROOT, args.cache))
        bw = workers["new"].ask({"op": "triad", "n": 20_000_000})["bw"]
        print(f"## {threads} thread(s): triad {bw / 1e9:.1f} GB/s")
        print("| loss | n | grads/reduction | " + " | ".join(workers) +
              " | new/old | new/torch | new % triad |")
        print("|---|---|---|" + "---|" * len(workers) + "---|---|---|")
        for loss in args.losses.split(","):
            for n in sizes:
                for variant in _variants(loss) if args.subsets else [None]:
                    med, arrays = _measure(workers, loss, n, variant, args.rounds)
                    nbytes = 4 * n * arrays  # float32 inputs read + gradients written
                    label = "case" if variant is None else f"{'+'.join(variant[0]) or '-'}/{variant[1]}"
                    torch = f"{med['new'] / med['torch']:.2f}" if "torch" in med else ""
                    triad_pct = 100 * nbytes / med["new"] / bw
                    print(f"| {loss} | {n:.0e} | {label} | " +
                          " | ".join(f"{med[k] * 1e3:.3f} ms" for k in workers) +
                          f" | {med['new'] / med['old']:.2f} | {torch} | {triad_pct:.0f}% |", flush=True)
        for w in workers.values():
            w.close()


if __name__ == "__main__":
    main()
