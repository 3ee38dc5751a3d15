"""Where the 1 KiB latency goes: p50 of sequential calls, contenders alternating in rounds.

- ``echo``: the bare echo server (``bench/echo_server.py``) through a raw stub;
- ``echo-raw``: its EchoRaw method with a prebuilt message, the response left unparsed
  (nobody parses anything: the transport alone);
- ``raw``: a lossd server through a raw method stub with a prebuilt serialized request and
  the response left unparsed (server + transport only);
- ``sdk``: ``LossClient.evaluate`` (request building, retry filter, response decoding);
- ``sdk-noretry``: the same with ``retries=0`` (no retry filter in the channel);
- with ``--base REV``, ``raw@base`` and ``sdk@base``: a second lossd server and SDK
  running the code of git revision REV (a worktree in /tmp), for old-vs-new A/Bs.

    .venv/bin/python -m bench.transport_ab [--rounds 40] [--calls 50] [--payload 1024] [--base HEAD]

Short rounds, many of them: on a shared machine load comes in bursts, and fine-grained
alternation spreads them over all contenders; the p50 is over all calls pooled.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from typing import Any, Callable

import grpc
import numpy as np
from google.protobuf.wrappers_pb2 import BytesValue

from bench import proc
from bench.e2e import CHANNEL_OPTIONS
from bench.e2e import latencies as timed
from bench.echo_server import raw_stub as echo_raw_stub
from bench.echo_server import stub as echo_stub

ROOT = proc.ROOT


def worktree(rev: str) -> str:
    """A detached worktree of ``rev`` under /tmp (reused when it exists)."""
    sha = subprocess.check_output(["git", "rev-parse", "--short", rev], cwd=ROOT, text=True).strip()
    path = f"/tmp/lossd_base_{sha}"
    if not os.path.isdir(path):
        subprocess.check_call(["git", "worktree", "add", "--detach", path, sha], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
    return path


def base_env(path: str) -> dict[str, str]:
    return {"PYTHONPATH": f"{path}/service:{path}/client"}


def sdk_worker(path: str) -> subprocess.Popen:
    """A child process timing the SDK of ``path`` (the parent's modules are the new code)."""
    return subprocess.Popen([sys.executable, "-m", "bench.transport_ab", "--child"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **base_env(path)})


def inputs(payload: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    n = payload // 8
    return {"input": rng.standard_normal(n).astype(np.float32),
            "target": rng.standard_normal(n).astype(np.float32)}


def child() -> None:
    """``target payload calls`` on stdin -> the SDK call times (seconds) on stdout, per line."""
    from lossd_client import LossClient

    clients: dict[str, Any] = {}
    for line in sys.stdin:
        target, payload, calls = line.split()
        client = clients.setdefault(target, LossClient(target, timeout=60))
        x = inputs(int(payload))
        times = timed(lambda c=client, x=x: c.evaluate("mse", x), int(calls))
        print(" ".join(map(str, times)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--payload", type=int, default=1024)
    parser.add_argument("--base", default="")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child()
        return
    from lossd_client import LossClient
    from lossd_client.codec import build_request

    servers = []
    echo, echo_target = proc.echo()
    servers.append(echo)
    lossd, target, _ = proc.lossd()
    servers.append(lossd)
    x = inputs(args.payload)
    raw_request = build_request("mse", x).SerializeToString()
    channels = []

    def raw(t: str) -> Callable[[], Any]:
        channel = grpc.insecure_channel(t, options=CHANNEL_OPTIONS)
        channels.append(channel)
        call = channel.unary_unary("/lossd.v1.LossService/Evaluate")  # bytes in, bytes out
        return lambda: call(raw_request, timeout=60)

    echo_channel = grpc.insecure_channel(echo_target, options=CHANNEL_OPTIONS)
    channels.append(echo_channel)
    echo, echo_raw = echo_stub(echo_channel), echo_raw_stub(echo_channel)
    payload = np.random.default_rng(1).bytes(args.payload)
    serialized = BytesValue(value=payload).SerializeToString()
    sdk = LossClient(target, timeout=60)
    sdk_noretry = LossClient(target, timeout=60, retries=0)
    fns: dict[str, Callable[[], Any]] = {
        "echo": lambda: echo(payload, 60), "echo-raw": lambda: echo_raw(serialized, 60), "raw": raw(target),
        "sdk": lambda: sdk.evaluate("mse", x), "sdk-noretry": lambda: sdk_noretry.evaluate("mse", x)}
    worker = None
    if args.base:
        path = worktree(args.base)
        old, old_target, _ = proc.lossd(env=base_env(path))
        servers.append(old)
        fns["raw@base"] = raw(old_target)
        worker = sdk_worker(path)

        def sdk_base() -> list[float]:
            assert worker is not None and worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(f"{old_target} {args.payload} {args.calls}\n")
            worker.stdin.flush()
            return [float(v) for v in worker.stdout.readline().split()]
    try:
        for fn in fns.values():
            timed(fn, 20)
        results: dict[str, list[list[float]]] = {k: [] for k in fns}
        if worker is not None:
            results["sdk@base"] = []
        for r in range(args.rounds):
            names = list(results) if r % 2 == 0 else list(results)[::-1]
            for name in names:
                results[name].append(sdk_base() if name == "sdk@base" else timed(fns[name], args.calls))
        pooled = {k: statistics.median(t for block in v for t in block) for k, v in results.items()}
        rounds = {k: [statistics.median(block) for block in v] for k, v in results.items()}
        print(f"{args.payload} B payload, {args.rounds} alternating rounds x {args.calls} calls")
        for name in results:
            med = pooled[name]
            print(f"  {name:12s} p50 {med * 1e6:8.0f} us  {med / pooled['echo']:5.2f}x echo  "
                  f"median of round p50s {statistics.median(rounds[name]) * 1e6:8.0f} us")
    finally:
        if worker is not None:
            worker.kill()
        for c in channels:
            c.close()
        sdk.close()
        sdk_noretry.close()
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
