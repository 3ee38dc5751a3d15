"""In-process A/B of the per-call Python path (``lossd.core.evaluate.run`` on a validated
call): this tree's ``core/evaluate.py``, ``losses/_elementwise.py`` and ``losses/common.py``
against the same three files of git revision REV, in ONE process on the same kernels
(loaded once; REV's modules are executed from ``git show`` and swapped in per sample),
alternating, medians of the thread's CPU time per call (steady on a loaded machine).

    .venv/bin/python -m bench.percall_ab --base REV [--losses mse,l1,huber] [--sizes 1e3] [--rounds 30]

Only those three files may differ between REV and this tree for the figures to mean
"old vs new Python path" (the kernels are this tree's).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import types

import numpy as np

from bench import cases
from bench.kernels import ROOT

FILES = {"evaluate": "service/lossd/core/evaluate.py", "elementwise": "service/lossd/losses/_elementwise.py",
         "common": "service/lossd/losses/common.py"}


def old_modules(rev: str) -> dict[str, types.ModuleType]:
    """REV's versions of FILES as module objects (importing this tree's other modules)."""
    out: dict[str, types.ModuleType] = {}
    for key, path in FILES.items():
        source = subprocess.check_output(["git", "show", f"{rev}:{path}"], cwd=ROOT, text=True)
        module = types.ModuleType(f"old_{key}")
        module.__file__ = path
        exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own source
        out[key] = module
    out["elementwise"].finish = out["common"].finish  # the old run calls the old finish
    return out


def per_call(run, call, calls: int) -> float:
    """CPU seconds per ``run(call)``."""
    t = time.thread_time()
    for _ in range(calls):
        run(call)
    return (time.thread_time() - t) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--losses", default="mse,l1,huber")
    parser.add_argument("--sizes", default="1e3")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    from lossd.core import evaluate as new_evaluate
    from lossd.core.validation import prepare
    from lossd.losses import _elementwise

    old = old_modules(args.base)
    new_run = _elementwise.run
    variants = {"old": (old["evaluate"].run, old["elementwise"].run), "new": (new_evaluate.run, new_run)}
    print("| loss | size | old us | new us | new/old |\n|---|---|---|---|---|")
    for loss in args.losses.split(","):
        for size in args.sizes.split(","):
            inputs, params = cases.build(loss, {"n": int(float(size))})
            call = prepare(loss, inputs, params, None)
            results = {}
            for name, (run, elementwise_run) in variants.items():
                _elementwise.run = elementwise_run
                results[name] = run(call)
            _elementwise.run = new_run
            for name in results["old"].grads:
                np.testing.assert_array_equal(results["old"].grads[name], results["new"].grads[name])
            np.testing.assert_array_equal(results["old"].loss, results["new"].loss)
            samples: dict[str, list[float]] = {k: [] for k in variants}
            calls = max(10, int(args.calls * 1e3 / float(size)))
            for r in range(args.rounds):
                for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
                    run, _elementwise.run = variants[name]
                    samples[name].append(per_call(run, call, calls))
            _elementwise.run = new_run
            o, n = (statistics.median(samples[k]) * 1e6 for k in ("old", "new"))
            print(f"| {loss} | {size} | {o:.2f} | {n:.2f} | {n / o:.2f} |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
