"""A/B of --inline-bytes: p50 of sequential 1 KiB mse calls against two servers that
differ only in that setting (inline on the event loop vs through the executor),
alternating rounds so machine noise hits both alike.

    .venv/bin/python -m bench.inline_ab [--rounds 6] [--calls 400]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from lossd_client import LossClient
from tests.serverproc import start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    servers = {"inline": start_server("--inline-bytes", "65536"),
               "executor": start_server("--inline-bytes", "0")}
    x = np.random.rand(128).astype(np.float32)
    y = np.random.rand(128).astype(np.float32)
    clients = {k: LossClient(s.grpc_target) for k, s in servers.items()}
    try:
        for client in clients.values():
            for _ in range(300):
                client.evaluate("mse", {"input": x, "target": y})
        p50s: dict[str, list[float]] = {k: [] for k in clients}
        for _ in range(args.rounds):
            for name, client in clients.items():
                latencies = []
                for _ in range(args.calls):
                    start = time.perf_counter()
                    client.evaluate("mse", {"input": x, "target": y})
                    latencies.append(time.perf_counter() - start)
                p50s[name].append(statistics.median(latencies) * 1e6)
        for name, values in p50s.items():
            print(f"{name:9s} p50 per round (us): {[round(v) for v in values]}  "
                  f"median {statistics.median(values):.0f}")
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.terminate()


if __name__ == "__main__":
    main()
