"""Where an 8 MB MSE call's server time goes, with glibc's default malloc policy and with
large allocations kept in the heap (``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``
in the server's environment): two servers, alternating blocks of sequential SDK calls in one
run; per-phase means from each server's own ``/metrics`` (decode, queue, validate, compute,
encode) and the client's p50.

With the default policy every response's ``b"".join`` (8 MB for 1M floats, both gradients)
lands in fresh mmap'd pages and pays their page faults. A diagnosis, not a setting: keeping
memory in the heap trades against the peak-RSS target (see lossd.core.memory).

    .venv/bin/python -m bench.malloc_ab [--floats 1000000] [--rounds 6] [--calls 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from bench import proc
from bench.transport_ab import inputs

RETAINED = {"MALLOC_MMAP_THRESHOLD_": str(256 << 20), "MALLOC_TRIM_THRESHOLD_": str(512 << 20)}


def phase_sums(http: str) -> dict[str, float]:
    """Per-phase seconds summed over the server's mse calls, and ``_calls``."""
    out: dict[str, float] = {}
    with urllib.request.urlopen(http + "/metrics", timeout=30) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            phase = s.labels.get("phase")
            if phase is None or s.labels.get("loss") != "mse":
                continue
            if s.name.endswith("_sum"):
                out[phase] = out.get(phase, 0.0) + s.value
            elif s.name.endswith("_count") and phase == "compute":
                out["_calls"] = out.get("_calls", 0.0) + s.value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--floats", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    from lossd_client import LossClient

    x = inputs(8 * args.floats)
    servers = {"default": proc.lossd(), "retained": proc.lossd(env=RETAINED)}
    clients = {k: LossClient(target, timeout=600) for k, (_, target, _) in servers.items()}
    try:
        for client in clients.values():
            client.evaluate("mse", x)
        before = {k: phase_sums(http) for k, (_, _, http) in servers.items()}
        times: dict[str, list[float]] = {k: [] for k in servers}
        for r in range(args.rounds):
            for name in (list(servers) if r % 2 == 0 else list(servers)[::-1]):
                for _ in range(args.calls):
                    t = time.perf_counter()
                    clients[name].evaluate("mse", x)
                    times[name].append(time.perf_counter() - t)
        print(f"{args.floats} floats per input, {args.rounds} alternating rounds x {args.calls} calls")
        for name, (_, _, http) in servers.items():
            after = phase_sums(http)
            calls = after["_calls"] - before[name]["_calls"]
            phases = "  ".join(f"{p} {(after[p] - before[name].get(p, 0.0)) / calls * 1e3:6.2f}"
                               for p in after if p != "_calls")
            p50 = statistics.median(times[name]) * 1e3
            print(f"  {name:9s} client p50 {p50:7.1f} ms; server ms/call: {phases}")
    finally:
        for client in clients.values():
            client.close()
        for p, _, _ in servers.values():
            p.stop()


if __name__ == "__main__":
    main()
