"""The hostile-input corpus against a real server: every malformed request gets its
specified status and a message naming the field; afterwards the server still answers a
valid request correctly and its RSS has not grown by more than a few MiB."""

from __future__ import annotations

import time

import grpc
import httpx
import numpy as np
import pytest

from lossd_client import LossClient
from tests.adversarial.corpus import (
    GRPC_CASES,
    HUGE_GRPC,
    HUGE_REST,
    MIB,
    REST_CASES,
    SERVER_ARGS,
    check,
    rss_bytes,
    send_grpc,
    send_huge_grpc,
    send_huge_rest,
    send_rest,
)
from tests.serverproc import start_server

RSS_GROWTH_LIMIT = 8 * MIB
# glibc's dynamic mmap threshold: once a large buffer (a 5 MiB or 300 MiB request) is freed,
# glibc raises the threshold and later buffers of that size come from the heap, whose freed
# memory it keeps. With the default RSS rises by 20-50 MiB over the first passes of this
# corpus and then levels off (measured), which would hide a real leak. A fixed threshold keeps
# large buffers mmapped and returned on free (a sensible setting for the server in production
# too); with it the growth after the warm-up pass is within a few MiB.
# One malloc arena: with one arena per worker thread, which thread serves which request
# decides where freed memory sits, and RSS after a pass swung by 5-15 MiB between identical
# passes (measured; a CI run saw +19 MiB over two passes). That is fragmentation, not a leak.
SERVER_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1024 * 1024), "MALLOC_ARENA_MAX": "1"}
# Passes after the warm-up pass; the first and the last third are compared by their minimum,
# so one pass whose buffers happen to be held does not count, while a leak of a few MiB per
# pass (it grows every pass) still exceeds the limit.
PASSES = 6


@pytest.fixture(scope="module")
def target():
    proc = start_server(*SERVER_ARGS, env=SERVER_ENV)
    channel = grpc.insecure_channel(proc.grpc_target, options=[
        ("grpc.max_send_message_length", 400 * MIB), ("grpc.max_receive_message_length", 64 * MIB)])
    http = httpx.Client(base_url=proc.http_base, timeout=60)
    yield proc, channel, http
    http.close()
    channel.close()
    assert proc.terminate() == 0


def test_corpus_size():
    assert len(GRPC_CASES) + len(REST_CASES) + 2 >= 60
    for cases in (GRPC_CASES, REST_CASES):
        assert len({c.name for c in cases}) == len(cases)


@pytest.mark.parametrize("case", GRPC_CASES, ids=lambda c: c.name)
def test_grpc_case(target, case):
    _, channel, _ = target
    assert check(case, send_grpc(channel, case.payload)) == []


@pytest.mark.parametrize("case", REST_CASES, ids=lambda c: c.name)
def test_rest_case(target, case):
    _, _, http = target
    assert check(case, send_rest(http, case)) == []


def test_300_mib_messages(target):
    proc, channel, _ = target
    assert check(HUGE_GRPC, send_huge_grpc(channel)) == []
    assert check(HUGE_REST, send_huge_rest(proc.http_base)) == []


def run_corpus(proc, channel, http) -> list[str]:
    problems = []
    for case in GRPC_CASES:
        problems += [f"{case.name}: {p}" for p in check(case, send_grpc(channel, case.payload))]
    for case in REST_CASES:
        problems += [f"{case.name}: {p}" for p in check(case, send_rest(http, case))]
    problems += check(HUGE_GRPC, send_huge_grpc(channel))
    problems += check(HUGE_REST, send_huge_rest(proc.http_base))
    return problems


def settled_rss(pid: int) -> int:
    """The smallest RSS over one second: buffers of the last (300 MiB) request are being
    returned to the system right after it, which is not growth."""
    samples = []
    for _ in range(20):
        samples.append(rss_bytes(pid))
        time.sleep(0.05)
    return min(samples)


def test_server_sound_after_corpus(target):
    """Warm-up pass, then PASSES more, each followed by a settled RSS sample: the smallest
    sample of the last third exceeds the smallest of the first third by at most a few MiB
    (a leak grows every pass; a transient spike is one sample), and valid answers are exact."""
    proc, channel, http = target
    assert run_corpus(proc, channel, http) == []
    samples = []
    for _ in range(PASSES):
        assert run_corpus(proc, channel, http) == []
        samples.append(settled_rss(proc.proc.pid))
    third = PASSES // 3
    baseline, after = min(samples[:third]), min(samples[-third:])
    print(f"corpus: {len(GRPC_CASES) + 1} gRPC + {len(REST_CASES) + 1} REST cases; RSS per pass "
          f"{[round(s / MIB, 1) for s in samples]} MiB ({(after - baseline) / MIB:+.2f})")
    assert after - baseline <= RSS_GROWTH_LIMIT

    x = np.array([[1.0, -2.0, 3.0]], np.float32)
    with LossClient(proc.grpc_target, timeout=30) as client:
        result = client.evaluate("mse", {"input": x, "target": np.zeros_like(x)})
    assert result.loss == np.float32(14.0 / 3.0)
    np.testing.assert_array_equal(result.grads["input"], x * np.float32(2.0 / 3.0))
    response = http.post("/v1/losses/mse:evaluate", json={
        "inputs": {"input": {"dtype": "float32", "shape": [1, 3], "data": [1.0, -2.0, 3.0]},
                   "target": {"dtype": "float32", "shape": [1, 3], "data": [0, 0, 0]}},
        "params": {"reduction": "sum"}})
    assert response.status_code == 200 and response.json()["loss"]["data"] == [14.0]
