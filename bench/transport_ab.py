"""Where the 1 KiB latency goes: p50 of sequential calls, contenders alternating in rounds.

- ``echo``: the bare echo server (``bench/echo_server.py``) through a raw stub;
- ``echo-raw``: its EchoRaw method with a prebuilt message, the response left unparsed
  (nobody parses anything: the transport alone);
- ``raw``: a lossd server through a raw method stub with a prebuilt serialized request and
  the response left unparsed (server + transport only);
- ``sdk``: ``LossClient.evaluate`` (request building, SDK retries, response decoding);
- ``sdk+retry``: the same with grpc's retry filter enabled in its channel (the channel of
  the SDK before it retried everything itself: its cost on every call);
- ``aio``: ``AsyncLossClient.evaluate``, sequential awaits in one event loop (timed
  inside the coroutine);
- with ``--base REV``, ``raw@base``, ``sdk@base`` and ``aio@base``: a second lossd server
  and SDK running the code of git revision REV (a worktree in /tmp; its SDK in a child
  process), for old-vs-new A/Bs.

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
import time
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


class AioTimer:
    """Times ``AsyncLossClient.evaluate`` on its own event loop: ``times(x, calls)``."""

    def __init__(self, target: str) -> None:
        import asyncio

        from lossd_client import AsyncLossClient

        self.loop = asyncio.new_event_loop()
        self.client = self.loop.run_until_complete(self._make(AsyncLossClient, target))

    @staticmethod
    async def _make(cls: Any, target: str) -> Any:
        return cls(target, timeout=60)

    async def _times(self, x: dict[str, np.ndarray], calls: int) -> list[float]:
        out = []
        for _ in range(calls):
            t = time.perf_counter()
            await self.client.evaluate("mse", x)
            out.append(time.perf_counter() - t)
        return out

    def times(self, x: dict[str, np.ndarray], calls: int) -> list[float]:
        return self.loop.run_until_complete(self._times(x, calls))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


def with_retry_filter(client: Any, target: str) -> Any:
    """``client`` (a LossClient of ``target``) on a channel with grpc's retries enabled and a retry policy
    for the streaming and listing methods, as the SDK had it up to f66d9dc."""
    import json

    from lossd_client.channel import EVALUATE_METHOD, SERVICE_NAME, channel_options
    from lossd_client.result import parse_response

    policy = {"maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "1s", "backoffMultiplier": 2.0,
              "retryableStatusCodes": ["UNAVAILABLE"]}
    config = {"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": [{
        "name": [{"service": SERVICE_NAME, "method": m} for m in ("EvaluateStream", "ListLosses")],
        "retryPolicy": policy}]}
    options = [o for o in channel_options() if o[0] not in ("grpc.enable_retries", "grpc.service_config")]
    options += [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config)),
                ("grpc.per_rpc_retry_buffer_size", 16 << 20), ("grpc.retry_buffer_size", 64 << 20)]
    client._channel.close()
    client._channel = grpc.insecure_channel(target, options=options)
    client._evaluate = client._channel.unary_unary(EVALUATE_METHOD, response_deserializer=parse_response)
    return client


def child() -> None:
    """``mode target payload calls`` on stdin (mode ``sdk`` or ``aio``) -> the SDK call
    times (seconds) on stdout, one line per request line."""
    from lossd_client import LossClient

    clients: dict[tuple[str, str], Any] = {}
    for line in sys.stdin:
        mode, target, payload, calls = line.split()
        x = inputs(int(payload))
        if mode == "aio":
            aio = clients.setdefault((mode, target), AioTimer(target))
            times = aio.times(x, int(calls))
        else:
            client = clients.setdefault((mode, target), LossClient(target, timeout=60))
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
    sdk_retry = with_retry_filter(LossClient(target, timeout=60), target)
    aio = AioTimer(target)
    fns: dict[str, Callable[[], Any]] = {
        "echo": lambda: echo(payload, 60), "echo-raw": lambda: echo_raw(serialized, 60), "raw": raw(target),
        "sdk": lambda: sdk.evaluate("mse", x), "sdk+retry": lambda: sdk_retry.evaluate("mse", x)}
    blocks: dict[str, Callable[[int], list[float]]] = {
        "aio": lambda calls: aio.times(x, calls)}
    worker = None
    if args.base:
        path = worktree(args.base)
        old, old_target, _ = proc.lossd(env=base_env(path))
        servers.append(old)
        fns["raw@base"] = raw(old_target)
        worker = sdk_worker(path)

        def in_worker(mode: str) -> Callable[[int], list[float]]:
            def times(calls: int) -> list[float]:
                assert worker is not None and worker.stdin is not None and worker.stdout is not None
                worker.stdin.write(f"{mode} {old_target} {args.payload} {calls}\n")
                worker.stdin.flush()
                return [float(v) for v in worker.stdout.readline().split()]
            return times
        blocks["sdk@base"], blocks["aio@base"] = in_worker("sdk"), in_worker("aio")
    for name, fn in fns.items():
        blocks[name] = lambda calls, fn=fn: timed(fn, calls)
    try:
        for block in blocks.values():
            block(20)
        results: dict[str, list[list[float]]] = {k: [] for k in blocks}
        for r in range(args.rounds):
            names = list(results) if r % 2 == 0 else list(results)[::-1]
            for name in names:
                results[name].append(blocks[name](args.calls))
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
        sdk_retry.close()
        aio.close()
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
