"""Client-side balancing without containers: three lossd processes on loopback.

The SDK, given the three addresses, spreads calls over all of them (``round_robin``), and
a replica killed with SIGKILL in the middle of a concurrent run costs no failed client
call (the SDK retries UNAVAILABLE, and round_robin sends the retry to another replica).
Each server's own ``lossd_requests_total`` tells how many calls it finished.
"""

from __future__ import annotations

import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lossd_client import LossClient, LossdError
from tests.serverproc import ServerProcess, start_server

REPLICAS = 3


def evaluate_count(server: ServerProcess) -> int:
    """Successful gRPC Evaluate calls the server has finished (its own /metrics)."""
    with urllib.request.urlopen(server.http_base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "lossd_requests_total" and sample.labels.get("method") == "Evaluate"
                    and sample.labels.get("transport") == "grpc" and sample.labels.get("code") == "OK"):
                total += sample.value
    return int(total)


@pytest.fixture(scope="module")
def replicas():
    """Three servers for this module (the SIGKILL test, which ends one, runs last)."""
    with ThreadPoolExecutor(REPLICAS) as pool:
        servers = list(pool.map(lambda _: start_server("--drain-delay", "0", "--grace", "2"),
                                range(REPLICAS)))
    yield servers
    for server in servers:
        if server.proc.poll() is None:
            server.terminate()


def _inputs(rng: np.random.Generator, n: int = 2048) -> dict[str, np.ndarray]:
    return {"input": rng.standard_normal(n).astype(np.float32),
            "target": rng.standard_normal(n).astype(np.float32)}


def _ready_client(servers: list[ServerProcess]) -> LossClient:
    client = LossClient([s.grpc_target for s in servers], timeout=60)
    grpc.channel_ready_future(client._channel).result(timeout=60)
    return client


def test_calls_spread_over_every_replica(replicas: list[ServerProcess]) -> None:
    rng = np.random.default_rng(0)
    before = [evaluate_count(s) for s in replicas]
    calls = 60
    with _ready_client(replicas) as client:
        for _ in range(calls):
            x = _inputs(rng)
            result = client.evaluate("mse", x)
            expected = np.mean((x["input"].astype(np.float64) - x["target"]) ** 2)
            assert result.loss == pytest.approx(expected, rel=1e-5)
    served = [evaluate_count(s) - b for s, b in zip(replicas, before)]
    assert sum(served) == calls, served
    # round_robin over three READY subchannels: every replica takes a fair share.
    assert min(served) >= calls // REPLICAS // 2, served


def test_sigkill_of_a_replica_costs_no_failed_call(replicas: list[ServerProcess]) -> None:
    victim, survivors = replicas[1], [replicas[0], replicas[2]]
    total, threads, kill_after = 240, 4, 60
    done = threading.Semaphore(0)
    failures: list[BaseException] = []
    completed = []
    lock = threading.Lock()

    with _ready_client(replicas) as client:
        def worker(seed: int) -> None:
            rng = np.random.default_rng(seed)
            for _ in range(total // threads):
                x = _inputs(rng, 1 << 15)
                try:
                    result = client.evaluate("mse", x, grads=["input"])
                    assert result.grads["input"].shape == x["input"].shape
                except (LossdError, AssertionError) as exc:  # every failure is kept
                    with lock:
                        failures.append(exc)
                with lock:
                    completed.append(1)
                done.release()

        pool = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads)]
        for t in pool:
            t.start()
        for _ in range(kill_after):
            assert done.acquire(timeout=120), "no progress before the kill"
        victim_served = evaluate_count(victim)
        survivors_before = sum(evaluate_count(s) for s in survivors)
        victim.proc.kill()  # SIGKILL: no drain, connections reset mid-call
        with lock:
            completed_at_kill = len(completed)
        victim.proc.wait(30)
        for t in pool:
            t.join(300)
        assert not any(t.is_alive() for t in pool)

    assert failures == [], failures
    assert len(completed) == total
    assert victim_served > 0
    # every call not yet completed at the kill was served by a survivor (less the few the
    # victim had finished whose replies were still on their way)
    after = sum(evaluate_count(s) for s in survivors)
    assert after - survivors_before >= total - completed_at_kill - threads, \
        (after, survivors_before, completed_at_kill)
