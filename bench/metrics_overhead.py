"""What metrics cost per request: a 1 KiB MSE request (128 float32 inputs + 128 targets),
metrics on vs off.

Two measurements:

1. direct (in-process, precise): an App in this event loop, its observer (Prometheus
   metrics + request log at its default level) wrapped in a stopwatch; sequential gRPC
   calls over loopback. Reports the mean time spent in ``call_started`` +
   ``call_finished`` (slowest 1% dropped: preemption) plus the batched folds of records
   into the series (scheduled right after a call; median fold spread over the calls)
   against the median server-side call duration (``CallRecord.duration``,
   which excludes the gRPC framework: a conservative denominator). The same with
   ``--metrics false`` (request log only) gives the stopwatch's and the log's own share;
   the difference is what metrics cost. Rounds alternate on/off.
2. end to end (two ``lossd serve`` processes, ``--metrics true`` and ``--metrics false``),
   sequential calls in short interleaved blocks so drift hits both alike:
   - server CPU seconds per call (utime + stime of the server process from /proc, all
     its threads: the whole server-side cost, gRPC included), on vs off;
   - client-observed latency: the median over block pairs of the on/off ratio of block
     medians. On a shared machine it is noisy; it is a sanity check.

Run from the repository root::

    .venv/bin/python bench/metrics_overhead.py [--calls 4000] [--blocks 40]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from lossd.core.observer import CallRecord, Observer  # noqa: E402
from lossd_client.codec import build_request  # noqa: E402

INPUT = np.linspace(-1, 1, 128, dtype=np.float32)
TARGET = np.zeros(128, np.float32)


class Stopwatch:
    """Times every call into the wrapped observer."""

    def __init__(self, inner: Observer) -> None:
        self.inner = inner
        self.started: list[int] = []
        self.spent: list[int] = []      # ns in call_started + call_finished, per call
        self.durations: list[float] = []  # server-side seconds per call

    def call_started(self, transport: str) -> None:
        t = time.perf_counter_ns()
        self.inner.call_started(transport)
        self.started.append(time.perf_counter_ns() - t)

    def call_finished(self, record: CallRecord) -> None:
        t = time.perf_counter_ns()
        self.inner.call_finished(record)
        self.spent.append(self.started.pop() + time.perf_counter_ns() - t)
        self.durations.append(record.duration)


async def direct(calls: int, metrics: bool = True) -> dict[str, float]:
    import grpc.aio

    from lossd.app import App
    from lossd.settings import Settings
    from lossd_client._proto.lossd.v1 import lossd_pb2_grpc as pb_grpc

    app = App(Settings(host="127.0.0.1", grpc_port=0, http_port=0, warmup=False, drain_delay=0.0,
                       metrics=metrics))
    await app.start()
    await app.warm_up()
    watch = Stopwatch(app.plane.observer)
    app.plane.observer = watch
    folded: list[int] = []  # ns per fold of batched records (scheduled after the calls' responses)
    if app.metrics is not None:
        fold = app.metrics.series.flush

        def timed_fold() -> None:
            t = time.perf_counter_ns()
            fold()
            folded.append(time.perf_counter_ns() - t)

        app.metrics.series.flush = timed_fold  # type: ignore[method-assign]
    request = build_request("mse", {"input": INPUT, "target": TARGET})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = pb_grpc.LossServiceStub(channel)
            for _ in range(200):  # warm the label caches and the connection
                await stub.Evaluate(request)
            if app.metrics is not None:
                app.metrics.series.flush()
            watch.spent.clear()
            watch.durations.clear()
            folded.clear()
            for _ in range(calls):
                await stub.Evaluate(request)
            if app.metrics is not None:
                app.metrics.series.flush()  # the last partial batch
    finally:
        await app.stop()
    # Mean per call, robust to preemption on a shared machine: the observer calls' mean
    # without their slowest 1%, plus the median fold times the folds per call.
    calls_ns = sorted(watch.spent)[: max(1, int(len(watch.spent) * 0.99))]
    fold_ns = statistics.median(folded) * len(folded) / len(watch.spent) if folded else 0.0
    spent = (statistics.fmean(calls_ns) + fold_ns) / 1e9
    server = statistics.median(watch.durations)
    return {"observer_s": spent, "observer_p99_s": float(np.percentile(watch.spent, 99)) / 1e9,
            "observer_max_s": max(watch.spent) / 1e9,
            "server_s": server, "ratio": spent / server, "request_bytes": request.ByteSize()}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), from /proc (10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def end_to_end(calls: int, blocks: int, off_flag: str, on_first: bool) -> dict[str, float]:
    """One round: both servers up, sequential calls to each in alternating blocks.

    The server started first (and its client, created first) measured a few percent slower
    in A/A runs on a shared machine, so :func:`main` runs two rounds with the start order
    swapped and combines them.
    """
    from lossd_client import LossClient
    from tests.serverproc import start_server

    order = ("on", "off") if on_first else ("off", "on")
    flags = {"on": "true", "off": off_flag}
    servers = {key: start_server("--metrics", flags[key]) for key in order}
    latencies: dict[str, list[float]] = {"on": [], "off": []}
    ratios: list[float] = []
    cpu = {"on": 0.0, "off": 0.0}
    try:
        clients = {key: LossClient(servers[key].grpc_target, timeout=30) for key in order}
        for client in clients.values():
            for _ in range(200):
                client.evaluate("mse", {"input": INPUT, "target": TARGET})
        per_block = max(1, calls // blocks)
        for block in range(blocks):
            medians = {}
            for key in (order if block % 2 == 0 else order[::-1]):
                client = clients[key]
                block_latencies = []
                cpu_before = cpu_seconds(servers[key].proc.pid)
                for _ in range(per_block):
                    t = time.perf_counter()
                    client.evaluate("mse", {"input": INPUT, "target": TARGET})
                    block_latencies.append(time.perf_counter() - t)
                cpu[key] += cpu_seconds(servers[key].proc.pid) - cpu_before
                latencies[key] += block_latencies
                medians[key] = statistics.median(block_latencies)
            ratios.append(medians["on"] / medians["off"])
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.terminate()
    cpu_on, cpu_off = cpu["on"] / len(latencies["on"]), cpu["off"] / len(latencies["off"])
    return {"on_s": statistics.median(latencies["on"]), "off_s": statistics.median(latencies["off"]),
            "latency_ratio": statistics.median(ratios), "cpu_on_s": cpu_on, "cpu_off_s": cpu_off,
            "cpu_ratio": cpu_on / cpu_off}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000, help="measured calls per measurement")
    parser.add_argument("--blocks", type=int, default=40, help="interleaved blocks (end to end)")
    parser.add_argument("--skip-e2e", action="store_true", help="only the in-process measurement")
    parser.add_argument("--a-a", action="store_true",
                        help="noise check: both end-to-end servers with metrics on")
    args = parser.parse_args()
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for metrics in (True, False, True, False):
        runs[metrics].append(asyncio.run(direct(args.calls, metrics)))
    on = {k: statistics.median(r[k] for r in runs[True]) for k in runs[True][0]}
    off = {k: statistics.median(r[k] for r in runs[False]) for k in runs[False][0]}
    print(f"request: mse, 2 x 128 float32 = 1 KiB of tensors ({int(on['request_bytes'])} bytes "
          f"serialized), {args.calls} calls per run, 2 runs each")
    print(f"direct, metrics on: observer (metrics + request log + stopwatch) mean "
          f"{on['observer_s'] * 1e6:.2f} us (p99 {on['observer_p99_s'] * 1e6:.2f} us, max "
          f"{on['observer_max_s'] * 1e6:.0f} us) per call; "
          f"server-side call median {on['server_s'] * 1e6:.1f} us: {100 * on['ratio']:.2f}%")
    print(f"direct, metrics off: observer (request log + stopwatch) mean {off['observer_s'] * 1e6:.2f} us; "
          f"server-side call median {off['server_s'] * 1e6:.1f} us: {100 * off['ratio']:.2f}%")
    cost = on["observer_s"] - off["observer_s"]
    print(f"metrics alone: {cost * 1e6:.2f} us per call = {100 * cost / off['server_s']:.2f}% of the "
          f"server-side call time with metrics off")
    if not args.skip_e2e:
        if args.a_a:
            print("A/A noise check: both servers have metrics on (the 'off' one is on too)")
        rounds = []
        for on_first in (True, False):
            e = end_to_end(args.calls, args.blocks, "true" if args.a_a else "false", on_first)
            rounds.append(e)
            print(f"round ({'on' if on_first else 'off'} started first): server CPU per call on "
                  f"{e['cpu_on_s'] * 1e6:.1f} us, off {e['cpu_off_s'] * 1e6:.1f} us (on/off "
                  f"{e['cpu_ratio']:.4f}); client p50 on {e['on_s'] * 1e6:.1f} us, off "
                  f"{e['off_s'] * 1e6:.1f} us (median per-block on/off {e['latency_ratio']:.4f})")
        cpu = math.sqrt(rounds[0]["cpu_ratio"] * rounds[1]["cpu_ratio"])
        latency = math.sqrt(rounds[0]["latency_ratio"] * rounds[1]["latency_ratio"])
        print(f"end to end, both start orders (geometric mean): server CPU on/off = {cpu:.4f}; "
              f"client latency on/off = {latency:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
