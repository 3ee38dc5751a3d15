"""Load driver: N concurrent clients mixing losses, sizes and both transports against a
real server, checking every answer, with latency percentiles and the server's RSS.

``make load`` runs ``python -m tests.load.driver --seconds 60 --clients 16 64`` (it starts
its own server unless ``--grpc-target``/``--http-base``/``--pid`` are given); the test
suite runs a few-second variant (tests/load/test_load.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from tests.procstat import rss_bytes

MIB = 1024 * 1024
REST_EVERY = 4  # one call in four goes over REST


@dataclass
class Case:
    loss: str
    inputs: dict[str, np.ndarray]
    params: dict[str, Any]
    expected: float = 0.0
    body: bytes = b""


def cases() -> list[Case]:
    """Small and large requests of several losses (float32 and float64)."""
    rng = np.random.default_rng(7)
    f32, f64 = np.float32, np.float64
    out = [
        Case("mse", {"input": rng.normal(size=32).astype(f32),
                     "target": rng.normal(size=32).astype(f32)}, {}),
        Case("mse", {"input": rng.normal(size=(128, 256)).astype(f32),
                     "target": rng.normal(size=(128, 256)).astype(f32)}, {"reduction": "sum"}),
        Case("softmax_cross_entropy", {"input": rng.normal(size=(64, 10)),
                                       "target": rng.integers(0, 10, 64)}, {"label_smoothing": 0.1}),
        Case("softmax_cross_entropy", {"input": rng.normal(size=(512, 100)).astype(f32),
                                       "target": rng.integers(0, 100, 512)}, {}),
        Case("sigmoid_focal", {"logits": rng.normal(size=20000).astype(f32),
                               "targets": (rng.random(20000) > 0.5).astype(f32)}, {}),
        Case("triplet_margin", {"anchor": rng.normal(size=(256, 64)), "positive": rng.normal(size=(256, 64)),
                                "negative": rng.normal(size=(256, 64))}, {"margin": 0.5}),
        Case("smooth_l1", {"input": rng.normal(size=30_000).astype(f64),
                           "target": rng.normal(size=30_000).astype(f64)}, {"beta": 0.5}),
        Case("arcface", {"features": rng.normal(size=(32, 16)).astype(f32),
                         "weight": rng.normal(size=(50, 16)).astype(f32),
                         "labels": rng.integers(0, 50, 32)}, {}),
    ]
    import lossd  # the expected answers, computed in this process

    for c in out:
        c.expected = float(lossd.evaluate(c.loss, c.inputs, c.params).loss)
        c.body = json.dumps({
            "inputs": {k: {"dtype": v.dtype.name, "shape": list(v.shape),
                           "b64": base64.b64encode(np.ascontiguousarray(v).tobytes()).decode()}
                       for k, v in c.inputs.items()},
            "params": c.params}).encode()
    return out


@dataclass
class Stats:
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    by_transport: dict[str, int] = field(default_factory=lambda: {"grpc": 0, "rest": 0})
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)
    window: float = 10.0

    def rss_windows(self) -> tuple[int, int]:
        """Median RSS over the first and the last ``window`` seconds."""
        stop = self.rss[-1][0]
        first = [r for t, r in self.rss if t <= self.window]
        last = [r for t, r in self.rss if t >= stop - self.window]
        return int(statistics.median(first)), int(statistics.median(last))

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        first, last = self.rss_windows()
        return {
            "clients": self.clients, "seconds": self.seconds, "requests": len(lat) + len(self.errors),
            "errors": len(self.errors), "grpc": self.by_transport["grpc"], "rest": self.by_transport["rest"],
            "rps": round(len(lat) / self.seconds, 1),
            "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None,
            "rss_first_mib": round(first / MIB, 1), "rss_last_mib": round(last / MIB, 1),
            "rss_growth_mib": round((last - first) / MIB, 1), "window_s": self.window,
            "first_errors": self.errors[:5],
        }


async def run_load(grpc_target: str, http_base: str, pid: int, clients: int, seconds: float,
                   window: float = 10.0, the_cases: list[Case] | None = None,
                   warmup: float = 5.0) -> Stats:
    """``clients`` concurrent loops for ``seconds`` after ``warmup`` unmeasured seconds;
    every answer checked (a wrong loss value counts as an error)."""
    from lossd_client import AsyncLossClient, LossdError

    the_cases = the_cases or cases()
    stats = Stats(clients, seconds, window=min(window, seconds / 3))
    grpc_clients = [AsyncLossClient(grpc_target, timeout=60, retries=1) for _ in range(4)]
    http = httpx.AsyncClient(base_url=http_base, timeout=60,
                             limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients))
    start = time.monotonic()
    end = start + seconds

    def check(case: Case, value: float) -> None:
        if not np.isclose(value, case.expected, rtol=1e-5, atol=1e-6):
            raise AssertionError(f"{case.loss}: {value} != {case.expected}")

    async def one(i: int, n: int) -> None:
        case = the_cases[(i + n) % len(the_cases)]
        rest = (i + n) % REST_EVERY == 0
        t0 = time.perf_counter()
        try:
            if rest:
                r = await http.post(f"/v1/losses/{case.loss}:evaluate", content=case.body,
                                    headers={"Content-Type": "application/json"})
                if r.status_code != 200:
                    raise AssertionError(f"HTTP {r.status_code}: {r.text[:200]}")
                doc = r.json()["loss"]
                value = float(np.frombuffer(base64.b64decode(doc["b64"]), dtype=doc["dtype"])[0])
            else:
                grpc_client = grpc_clients[i % len(grpc_clients)]
                result = await grpc_client.evaluate(case.loss, case.inputs, case.params)
                value = float(result.loss)
            check(case, value)
        except (AssertionError, LossdError, httpx.HTTPError) as exc:
            stats.errors.append(f"{'rest' if rest else 'grpc'} {case.loss}: {type(exc).__name__} {exc}")
            return
        stats.latencies.append(time.perf_counter() - t0)
        stats.by_transport["rest" if rest else "grpc"] += 1

    async def client(i: int) -> None:
        n = 0
        while time.monotonic() < end:
            await one(i, n)
            n += 1

    async def sample(work: asyncio.Future) -> None:
        while not work.done():
            stats.rss.append((time.monotonic() - start, rss_bytes(pid)))
            await asyncio.sleep(0.25)
        stats.rss.append((time.monotonic() - start, rss_bytes(pid)))

    try:
        for i in range(len(the_cases) * REST_EVERY):  # every case on both transports once
            await one(i, 0)
        end = time.monotonic() + warmup  # then the same load unmeasured (buffers, arenas)
        await asyncio.gather(*(client(i) for i in range(clients)))
        stats.latencies.clear()
        stats.by_transport = {"grpc": 0, "rest": 0}
        start = time.monotonic()
        end = start + seconds
        work = asyncio.gather(*(client(i) for i in range(clients)))
        await asyncio.gather(sample(work), work)
        stats.seconds = time.monotonic() - start
    finally:
        await http.aclose()
        for c in grpc_clients:
            await c.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--grpc-target", default="")
    parser.add_argument("--http-base", default="")
    parser.add_argument("--pid", type=int, default=0, help="server pid (for RSS)")
    parser.add_argument("--rss-limit-mib", type=float, default=32.0,
                        help="largest allowed RSS growth between the first and last window")
    args = parser.parse_args(argv)
    server = None
    if not args.grpc_target:
        sys.path.insert(0, ".")
        from tests.serverproc import start_server

        server = start_server()
        args.grpc_target, args.http_base, args.pid = server.grpc_target, server.http_base, server.proc.pid
    failed = False
    try:
        the_cases = cases()
        for n in args.clients:
            stats = asyncio.run(run_load(args.grpc_target, args.http_base, args.pid, n, args.seconds,
                                         the_cases=the_cases))
            summary = stats.summary()
            print(json.dumps(summary), flush=True)
            failed |= summary["errors"] > 0 or summary["rss_growth_mib"] > args.rss_limit_mib
    finally:
        if server is not None:
            server.terminate()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
