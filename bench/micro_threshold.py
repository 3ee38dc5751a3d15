"""Serial vs parallel build of dual kernels by size, to choose LOSSD_PARALLEL_THRESHOLD.

    .venv/bin/python -m bench.micro_threshold mse sigmoid_cross_entropy --threads 2

For each loss and n = 2^14..2^20 (float32, bench case inputs), ``compute`` runs with the
threshold forced to infinity (serial) and to 0 (parallel), alternating, and prints the
medians and parallel/serial.
"""

from __future__ import annotations

import argparse
import importlib
import statistics

import numpy as np

from bench.micro_kernels import _time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("losses", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--exps", default="14,15,16,17,18,20")
    args = ap.parse_args(argv)

    import numba

    from bench import cases
    from bench.kernels import grads_of
    from lossd.core.validation import prepare
    from lossd.kernels import jit

    numba.set_num_threads(args.threads)
    for loss in args.losses:
        mod = importlib.import_module(f"lossd.losses.{loss}")
        for e in (int(v) for v in args.exps.split(",")):
            dims = {"n": 1 << e}
            inputs, params = cases.build(loss, dims, np.float32)
            call = prepare(loss, inputs, params, grads_of(loss, dims))
            ts: dict[int, list[float]] = {0: [], 1 << 62: []}
            for r in range(args.rounds):
                order = [0, 1 << 62] if r % 2 == 0 else [1 << 62, 0]
                for thr in order:
                    jit.PARALLEL_THRESHOLD = thr
                    ts[thr].append(_time(lambda mod=mod, call=call: mod.compute(call)))
            par, ser = statistics.median(ts[0]), statistics.median(ts[1 << 62])
            print(f"{loss} n=2^{e} threads={args.threads}: serial {ser * 1e6:.1f} us  "
                  f"parallel {par * 1e6:.1f} us  parallel/serial {par / ser:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
