"""Side-by-side micro-benchmark of one loss's ``compute``: a git revision vs the working tree.

    .venv/bin/python -m bench.micro_kernels nll_loss --rev HEAD --threads 1 2 --dims n=4096,c=1000

The old module (``git show REV:service/lossd/losses/<id>.py``) is imported from a temp
file next to the new one and both ``compute`` functions run on the same prepared call,
alternating A/B in rounds; medians of per-round times are reported with the ratio new/old.
Numba thread count is set with ``numba.set_num_threads``. Times include the Python wrapper.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _load_old(loss: str, rev: str):
    """``lossd.losses.<loss>`` at ``rev``; its imports of other loss modules (shared inline
    helpers) are redirected to their ``rev`` versions too."""
    src = subprocess.run(["git", "show", f"{rev}:service/lossd/losses/{loss}.py"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    for dep in sorted(set(re.findall(r"^from lossd\.losses\.(\w+) import", src, re.M))):
        if dep not in ("common", "registry"):
            old_name = _load_old(dep, rev).__name__
            src = src.replace(f"from lossd.losses.{dep} import", f"from {old_name} import")
    d = Path(tempfile.mkdtemp(prefix="lossd_old_"))
    path = d / f"{loss}_old_{re.sub(r'[^A-Za-z0-9_]', '_', rev)}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


def _time(fn, min_batch: float = 2e-3) -> float:
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    m = max(1, int(min_batch / max(first, 1e-7)))
    t = time.perf_counter()
    for _ in range(m):
        fn()
    return (time.perf_counter() - t) / m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("loss")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--dims", action="append", required=True, help="n=4096,c=1000 (repeatable)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--grads", default=None, help="comma list; default: the bench case's grads")
    args = ap.parse_args(argv)

    import numba

    sys.path.insert(0, str(ROOT))
    from bench import cases
    from bench.kernels import grads_of
    from lossd.core.validation import prepare
    from lossd.losses import registry  # noqa: F401

    new = importlib.import_module(f"lossd.losses.{args.loss}")
    old = _load_old(args.loss, args.rev)
    for dimspec in args.dims:
        dims = {k: int(float(v)) for k, v in (kv.split("=") for kv in dimspec.split(","))}
        inputs, params = cases.build(args.loss, dims, np.dtype(args.dtype))
        grads = args.grads.split(",") if args.grads else grads_of(args.loss, dims)
        call = prepare(args.loss, inputs, params, grads)
        a, b = old.compute(call), new.compute(call)  # warm + sanity
        np.testing.assert_allclose(np.float64(a.loss), np.float64(b.loss), rtol=1e-5)
        for k in a.grads:
            np.testing.assert_allclose(a.grads[k], b.grads[k], rtol=1e-5, atol=1e-7)
        for th in args.threads:
            numba.set_num_threads(th)
            told, tnew = [], []
            for r in range(args.rounds):
                pair = [(told, old), (tnew, new)] if r % 2 == 0 else [(tnew, new), (told, old)]
                for acc, mod in pair:
                    acc.append(_time(lambda mod=mod, call=call: mod.compute(call)))
            mo, mn = statistics.median(told), statistics.median(tnew)
            print(f"{args.loss} {dimspec} {args.dtype} threads={th}: old {mo * 1e3:.3f} ms  "
                  f"new {mn * 1e3:.3f} ms  new/old {mn / mo:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
