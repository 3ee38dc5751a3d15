"""What metrics cost per request: a 1 KiB MSE request (256 float32 inputs + 256 targets),
metrics on vs off.

Two measurements:

1. direct (in-process, precise): an App in this event loop, its observer (Prometheus
   metrics + request log at its default level) wrapped in a stopwatch; sequential gRPC
   calls over loopback. Reports the median time spent in ``call_started`` +
   ``call_finished`` against the median server-side call duration (``CallRecord.duration``,
   which excludes the gRPC framework: a conservative denominator).
2. end to end (two ``lossd serve`` processes, ``--metrics true`` and ``--metrics false``):
   client-observed median latency of sequential calls, in interleaved blocks so drift
   hits both alike. The difference is usually inside the noise; it is a sanity check.

Run from the repository root::

    .venv/bin/python bench/metrics_overhead.py [--calls 4000] [--blocks 10]
"""

from __future__ import annotations

import argparse
import asyncio
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

INPUT = np.linspace(-1, 1, 256, dtype=np.float32)
TARGET = np.zeros(256, np.float32)


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


async def direct(calls: int) -> dict[str, float]:
    import grpc.aio

    from lossd.app import App
    from lossd.settings import Settings
    from lossd_client._proto.lossd.v1 import lossd_pb2_grpc as pb_grpc

    app = App(Settings(host="127.0.0.1", grpc_port=0, http_port=0, warmup=False, drain_delay=0.0))
    await app.start()
    await app.warm_up()
    watch = Stopwatch(app.plane.observer)
    app.plane.observer = watch
    request = build_request("mse", {"input": INPUT, "target": TARGET})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = pb_grpc.LossServiceStub(channel)
            for _ in range(200):  # warm the label caches and the connection
                await stub.Evaluate(request)
            watch.spent.clear()
            watch.durations.clear()
            for _ in range(calls):
                await stub.Evaluate(request)
    finally:
        await app.stop()
    spent = statistics.median(watch.spent) / 1e9
    server = statistics.median(watch.durations)
    return {"observer_s": spent, "observer_p99_s": float(np.percentile(watch.spent, 99)) / 1e9,
            "server_s": server, "ratio": spent / server, "request_bytes": request.ByteSize()}


def end_to_end(calls: int, blocks: int) -> dict[str, float]:
    from lossd_client import LossClient
    from tests.serverproc import start_server

    servers = {"on": start_server("--metrics", "true"), "off": start_server("--metrics", "false")}
    latencies: dict[str, list[float]] = {"on": [], "off": []}
    try:
        clients = {k: LossClient(s.grpc_target, timeout=30) for k, s in servers.items()}
        for client in clients.values():
            for _ in range(200):
                client.evaluate("mse", {"input": INPUT, "target": TARGET})
        per_block = max(1, calls // blocks)
        for block in range(blocks):
            for key in (("on", "off") if block % 2 == 0 else ("off", "on")):
                client = clients[key]
                for _ in range(per_block):
                    t = time.perf_counter()
                    client.evaluate("mse", {"input": INPUT, "target": TARGET})
                    latencies[key].append(time.perf_counter() - t)
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.terminate()
    on, off = statistics.median(latencies["on"]), statistics.median(latencies["off"])
    return {"on_s": on, "off_s": off, "ratio": on / off}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000, help="measured calls per measurement")
    parser.add_argument("--blocks", type=int, default=10, help="interleaved blocks (end to end)")
    parser.add_argument("--skip-e2e", action="store_true", help="only the in-process measurement")
    args = parser.parse_args()
    d = asyncio.run(direct(args.calls))
    print(f"request: mse, 2 x 256 float32 ({d['request_bytes']} bytes serialized), {args.calls} calls")
    print(f"direct: observer (metrics + request log) median {d['observer_s'] * 1e6:.2f} us "
          f"(p99 {d['observer_p99_s'] * 1e6:.2f} us) per call; server-side call median "
          f"{d['server_s'] * 1e6:.1f} us; overhead {100 * d['ratio']:.2f}%")
    if not args.skip_e2e:
        e = end_to_end(args.calls, args.blocks)
        print(f"end to end (client p50, interleaved): metrics on {e['on_s'] * 1e6:.1f} us, "
              f"off {e['off_s'] * 1e6:.1f} us; on/off = {e['ratio']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
