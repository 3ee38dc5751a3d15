"""End to end: lossd over gRPC (MSE with both gradients, through the SDK) against a bare
gRPC echo of the same bytes (``bench/echo_server.py``), both servers in their own
processes on loopback, the load generator in this one.

A payload of P bytes is P/2 bytes of float32 ``input`` and P/2 of ``target``; lossd
answers with both gradients (P bytes), the echo with the same P bytes, so both move the
same bytes each way. Contenders alternate in blocks; medians over the blocks.

    python -m bench.e2e [--quick] [--out bench/out/e2e.json]
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from typing import Any, Callable

import grpc
import numpy as np

from bench import cli, proc
from bench.echo_server import stub as echo_stub

KIB, MIB = 1024, 1024 * 1024
PAYLOADS = [64 * KIB, MIB, 16 * MIB, 64 * MIB]
CONCURRENCY = [1, 4, 16]
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 320 * MIB),
                   ("grpc.max_send_message_length", 320 * MIB)]


def mse_inputs(payload: int) -> dict[str, np.ndarray]:
    n = payload // 8
    rng = np.random.default_rng(1)
    return {"input": rng.standard_normal(n).astype(np.float32),
            "target": rng.standard_normal(n).astype(np.float32)}


def lossd_call(client) -> Callable[[int], Callable[[], Any]]:
    def make(payload: int):
        inputs = mse_inputs(payload)
        return lambda: client.evaluate("mse", inputs)
    return make


def echo_call(channel: grpc.Channel) -> Callable[[int], Callable[[], Any]]:
    echo = echo_stub(channel)

    def make(payload: int):
        data = np.random.default_rng(1).bytes(payload)
        return lambda: echo(data, 600)
    return make


def latencies(fn: Callable[[], Any], count: int) -> list[float]:
    out = []
    for _ in range(count):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def throughput(fn: Callable[[], Any], concurrency: int, duration: float, min_calls: int) -> dict[str, float]:
    """Calls/s with ``concurrency`` threads calling ``fn`` for about ``duration`` seconds."""
    done = [0] * concurrency
    errors: list[str] = []
    stop_at = [0.0]

    def loop(k: int) -> None:
        while True:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                return
            done[k] += 1
            if time.perf_counter() >= stop_at[0] and sum(done) >= min_calls:
                return

    start = time.perf_counter()
    stop_at[0] = start + duration
    threads = [threading.Thread(target=loop, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"calls_per_s": sum(done) / elapsed, "calls": sum(done), "errors": len(errors),
            "error": errors[0] if errors else ""}


def run(quick: bool, log=print) -> dict[str, Any]:
    from lossd_client import LossClient

    result: dict[str, Any] = {"latency": {}, "throughput": [], "notes": []}
    lossd, target, http = proc.lossd("--max-queued-bytes", str(4096 * MIB))
    echo, echo_target = proc.echo()
    result["notes"].append("lossd runs with --max-queued-bytes 4096 MiB so 16 concurrent 64 MiB calls "
                           "are admitted (the default 1024 MiB would refuse some with RESOURCE_EXHAUSTED)")
    try:
        with LossClient(target, timeout=600) as client:
            channel = grpc.insecure_channel(echo_target, options=CHANNEL_OPTIONS)
            makers = {"lossd": lossd_call(client), "echo": echo_call(channel)}
            # sequential 1 KiB: alternate blocks of calls
            blocks, per_block = (4, 150) if quick else (8, 250)
            lat: dict[str, list[float]] = {k: [] for k in makers}
            fns = {k: m(KIB) for k, m in makers.items()}
            for fn in fns.values():
                latencies(fn, 50)  # warm the channel
            for b in range(blocks):
                for name in (list(fns) if b % 2 == 0 else list(fns)[::-1]):
                    lat[name].extend(latencies(fns[name], per_block))
            for name, values in lat.items():
                q = np.percentile(values, [50, 99])
                result["latency"][name] = {"p50": float(q[0]), "p99": float(q[1]), "n": len(values)}
            log("  1 KiB sequential: " + "  ".join(
                f"{n} p50={v['p50'] * 1e6:.0f}us p99={v['p99'] * 1e6:.0f}us"
                for n, v in result["latency"].items()))
            rounds = 2 if quick else 3
            duration = 0.6 if quick else 1.2
            for payload in PAYLOADS:
                fns = {k: m(payload) for k, m in makers.items()}
                for c in CONCURRENCY:
                    cells: dict[str, list[dict[str, float]]] = {k: [] for k in fns}
                    for r in range(rounds):
                        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                            cells[name].append(throughput(fns[name], c, duration, min_calls=c))
                    for name, runs in cells.items():
                        cps = statistics.median(x["calls_per_s"] for x in runs)
                        spread = [min(x["calls_per_s"] for x in runs), max(x["calls_per_s"] for x in runs)]
                        row = {"contender": name, "payload": payload, "concurrency": c, "calls_per_s": cps,
                               "mb_per_s": cps * payload / 1e6, "spread": spread,
                               "errors": sum(x["errors"] for x in runs),
                               "error": next((x["error"] for x in runs if x["error"]), "")}
                        result["throughput"].append(row)
                    log(f"  {payload // KIB:>6} KiB c={c:<2} " + "  ".join(
                        f"{r['contender']}={r['mb_per_s']:.0f}MB/s"
                        for r in result["throughput"][-len(cells):]))
            channel.close()
        result["rest"] = rest_probe(http)
    finally:
        lossd.stop()
        echo.stop()
    return result


def rest_probe(http: str) -> dict[str, Any]:
    """Whether the server has a REST evaluate route yet (measured once it does)."""
    import httpx

    try:
        r = httpx.get(http + "/openapi.json", timeout=5)
        paths = list(r.json().get("paths", {})) if r.status_code == 200 else []
    except Exception as exc:  # noqa: BLE001 - only a probe
        return {"available": False, "note": f"probe failed: {exc}"}
    routes = [p for p in paths if "evaluate" in p.lower()]
    return {"available": bool(routes), "routes": routes}


def main(argv: list[str] | None = None) -> int:
    return cli.main(run, "bench/out/e2e.json", argv)


if __name__ == "__main__":
    sys.exit(main())
