"""A/B of the server's peak RSS growth for one 64 MiB MSE request: this tree's server
against the server of git revision REV (a worktree, see bench/transport_ab.py), fresh
servers each round, alternating; the client is this tree's SDK for both.

    .venv/bin/python -m bench.memory_ab --base REV [--rounds 2] [--mib 64]

``--base`` may also be the path of an existing checkout (e.g. ``git worktree add /tmp/old REV``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench import proc
from bench.system import MIB, payload_inputs, peak_growth
from bench.transport_ab import base_env, worktree
from lossd_client import LossClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--calls", type=int, default=3, help="timed requests after the peak")
    args = parser.parse_args()
    inputs = payload_inputs(args.mib * MIB)
    base = args.base if os.path.isdir(args.base) else worktree(args.base)
    envs = {"new": None, "base": base_env(base)}
    ratios: dict[str, list[float]] = {k: [] for k in envs}
    seconds: dict[str, list[float]] = {k: [] for k in envs}
    for r in range(args.rounds):
        for name in (list(envs) if r % 2 == 0 else list(envs)[::-1]):
            p, target, _ = proc.lossd(env=envs[name])
            try:
                out = peak_growth(p, target, inputs)
                times = timed_calls(target, inputs, args.calls)
            finally:
                p.stop()
            ratios[name].append(out["growth_ratio"])
            seconds[name] += times
            print(f"  {name:5s} growth {out['growth'] / MIB:.0f} MiB = {out['growth_ratio']:.2f}x payload, "
                  f"peak {out['peak_rss'] / MIB:.0f} MiB (idle {out['idle_rss'] / MIB:.0f} MiB); "
                  f"calls {[round(t * 1e3) for t in times]} ms", flush=True)
    for name, values in ratios.items():
        print(f"{name:5s} median growth {statistics.median(values):.2f}x payload  "
              f"{[round(v, 2) for v in values]}; median call {statistics.median(seconds[name]) * 1e3:.0f} ms")


def timed_calls(target: str, inputs: dict, calls: int) -> list[float]:
    """Seconds of ``calls`` sequential requests of ``inputs`` (one client)."""
    out = []
    with LossClient(target, timeout=600) as client:
        for _ in range(calls):
            t = time.perf_counter()
            client.evaluate("mse", inputs)
            out.append(time.perf_counter() - t)
    return out


if __name__ == "__main__":
    main()
