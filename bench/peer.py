"""The peer: the same MSE with both gradients served by Seldon MLServer (custom runtime
in ``bench/peers/mse``, parallel_workers 0, its own venv so its pins cannot touch ours)
through tritonclient over gRPC, against lossd through its SDK, at 32 and 1M floats per
input. Sequential calls, alternating rounds; p50 latency and calls/s. A third contender,
``echo (same bytes)``, is the bare gRPC echo's EchoRaw (``bench/echo_server.py``) moving the
bytes lossd moves (8n each way, no parsing): the transport floor, so the table shows how
much of lossd's time is the transport itself (the ratio to MLServer cannot exceed
MLServer's time over the echo's).

The peer venv is ``$BENCH_PEER_PYTHON`` or ``bench/.venv-peer`` (``make bench`` makes it);
without it this section is skipped with a note.

    python -m bench.peer [--quick] [--out bench/out/peer.json]
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import numpy as np

from bench import cli, proc

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [32, 1_000_000]
ECHO = "echo (same bytes)"


def peer_python() -> str | None:
    path = os.environ.get("BENCH_PEER_PYTHON") or os.path.join(HERE, ".venv-peer", "bin", "python")
    return path if os.path.exists(path) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlserver(python: str) -> tuple[proc.Proc, str, str]:
    work = tempfile.mkdtemp(prefix="lossd-bench-mlserver-")
    shutil.copytree(os.path.join(HERE, "peers", "mse"), os.path.join(work, "mse"))
    http, grpc_port = free_port(), free_port()
    env = {"MLSERVER_HTTP_PORT": str(http), "MLSERVER_GRPC_PORT": str(grpc_port),
           "MLSERVER_PARALLEL_WORKERS": "0", "MLSERVER_HOST": "127.0.0.1",
           "MLSERVER_METRICS_PORT": str(free_port()), "MLSERVER_GRPC_MAX_MESSAGE_LENGTH": str(256 << 20)}
    mlserver = os.path.join(os.path.dirname(python), "mlserver")
    p = proc.start([mlserver, "start", os.path.join(work, "mse")], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if p.proc.poll() is not None:
            raise RuntimeError(f"mlserver exited: {p.lines[-10:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/mse/ready", timeout=2) as r:
                if r.status == 200:
                    return p, f"127.0.0.1:{grpc_port}", work
        except OSError:
            time.sleep(0.3)
    p.stop()
    raise TimeoutError(f"mlserver not ready: {p.lines[-10:]}")


def peer_latencies(python: str, target: str, n: int, calls: int) -> list[float]:
    out = subprocess.run([python, os.path.join(HERE, "peers", "peer_client.py"), target, str(n), str(calls)],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-500:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def lossd_latencies(client, n: int, calls: int) -> list[float]:
    rng = np.random.default_rng(1)
    inputs = {"input": rng.standard_normal(n).astype(np.float32),
              "target": rng.standard_normal(n).astype(np.float32)}
    client.evaluate("mse", inputs)
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        client.evaluate("mse", inputs)
        out.append(time.perf_counter() - t)
    return out


def echo_latencies(channel, n: int, calls: int) -> list[float]:
    """The bare echo of 8n bytes (lossd's request and response size) through EchoRaw."""
    from bench.echo_server import raw_stub

    echo = raw_stub(channel)
    payload = np.random.default_rng(1).bytes(8 * n)
    echo(payload, 600)
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        echo(payload, 600)
        out.append(time.perf_counter() - t)
    return out


def run(quick: bool, log=print) -> dict[str, Any]:
    python = peer_python()
    if python is None:
        return {"skipped": "no peer venv (make bench creates bench/.venv-peer with mlserver)"}
    import grpc

    from bench.e2e import CHANNEL_OPTIONS
    from lossd_client import LossClient

    result: dict[str, Any] = {"rows": []}
    mls, mls_target, work = start_mlserver(python)
    lossd, target, _ = proc.lossd()
    echo, echo_target = proc.echo()
    channel = grpc.insecure_channel(echo_target, options=CHANNEL_OPTIONS)
    try:
        with LossClient(target, timeout=600) as client:
            for n in SIZES:
                calls = (300 if quick else 600) if n < 1000 else (5 if quick else 10)
                lat: dict[str, list[float]] = {"lossd": [], "mlserver": [], ECHO: []}
                for r in range(2):
                    order = ["mlserver", "lossd", ECHO] if r % 2 == 0 else [ECHO, "lossd", "mlserver"]
                    for name in order:
                        if name == "lossd":
                            lat[name] += lossd_latencies(client, n, calls)
                        elif name == ECHO:
                            lat[name] += echo_latencies(channel, n, calls)
                        else:
                            lat[name] += peer_latencies(python, mls_target, n, calls)
                for name, values in lat.items():
                    p50 = float(np.median(values))
                    result["rows"].append({"contender": name, "floats": n, "p50": p50,
                                           "p99": float(np.percentile(values, 99)),
                                           "calls_per_s": len(values) / sum(values), "n": len(values)})
                    log(f"  peer {n:>8} floats {name:<9} p50 {p50 * 1e3:.3f} ms")
    finally:
        channel.close()
        echo.stop()
        lossd.stop()
        mls.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    return cli.main(run, "bench/out/peer.json", argv)


if __name__ == "__main__":
    sys.exit(main())
