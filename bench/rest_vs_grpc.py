"""REST (JSON, b64 tensors) vs gRPC latency p50 for mse against a live lossd server.

    .venv/bin/python bench/rest_vs_grpc.py                 # starts its own server
    .venv/bin/python bench/rest_vs_grpc.py --grpc HOST:PORT --http http://HOST:PORT

Sequential calls from one client (keep-alive connection / one channel), float32 mse with
both gradients; sizes are the bytes of the two input tensors together. Also times the
REST lists form at the small size.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def p50(fn, repeat: int) -> float:
    fn()
    fn()  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _tensor(a: np.ndarray, form: str) -> dict:
    if form == "b64":
        return {"dtype": "float32", "shape": [a.size], "b64": base64.b64encode(a.tobytes()).decode()}
    return {"dtype": "float32", "shape": [a.size], "data": a.tolist()}


def rest_call(http: httpx.Client, x: np.ndarray, y: np.ndarray, form: str) -> np.ndarray:
    """One REST evaluation, client encode and decode included (as gRPC's SDK does both)."""
    raw = orjson.dumps({"inputs": {"input": _tensor(x, form), "target": _tensor(y, form)}})
    r = http.post("/v1/losses/mse:evaluate", content=raw, headers={"Content-Type": "application/json"})
    r.raise_for_status()
    grad = orjson.loads(r.content)["grads"]["input"]
    if form == "b64":
        return np.frombuffer(base64.b64decode(grad["b64"]), np.float32)
    return np.array(grad["data"], np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grpc", default="")
    ap.add_argument("--http", default="")
    args = ap.parse_args()
    proc = None
    if not args.grpc:
        from tests.serverproc import start_server
        proc = start_server()
        args.grpc, args.http = proc.grpc_target, proc.http_base
    from lossd_client import LossClient
    try:
        with LossClient(args.grpc, timeout=120) as client, \
                httpx.Client(base_url=args.http, timeout=120) as http:
            rng = np.random.default_rng(0)
            for total, repeat in ((1024, 300), (16 * 1024 * 1024, 15)):
                n = total // 8  # two float32 inputs
                x = rng.standard_normal(n, dtype=np.float32)
                y = rng.standard_normal(n, dtype=np.float32)
                g = p50(lambda x=x, y=y: client.evaluate("mse", {"input": x, "target": y}), repeat)
                rb = p50(lambda x=x, y=y: rest_call(http, x, y, "b64"), repeat)
                line = f"{total:>9} B  gRPC p50 {g * 1e3:8.3f} ms   REST b64 p50 {rb * 1e3:8.3f} ms"
                if total <= 1024:
                    rl = p50(lambda x=x, y=y: rest_call(http, x, y, "lists"), repeat)
                    line += f"   REST lists p50 {rl * 1e3:8.3f} ms"
                print(line, flush=True)
    finally:
        if proc is not None:
            proc.terminate()


if __name__ == "__main__":
    main()
