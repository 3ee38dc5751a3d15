"""A short load run (the 60 s one is ``make load``): 16 and 64 concurrent clients mixing
losses, sizes and both transports against a real server; zero errors (every answer is
checked against the in-process result), latency percentiles reported, server RSS stable
between the first and the last third of the run."""

from __future__ import annotations

import asyncio

import pytest

from tests.load.driver import MIB, cases, run_load
from tests.serverproc import start_server

SECONDS = 4.0
RSS_GROWTH_LIMIT = 16 * MIB


@pytest.fixture(scope="module")
def target():
    proc = start_server()
    yield proc
    assert proc.terminate() == 0


@pytest.fixture(scope="module")
def the_cases():
    return cases()


@pytest.mark.parametrize("clients", [16, 64])
def test_short_load(target, the_cases, clients):
    stats = asyncio.run(run_load(target.grpc_target, target.http_base, target.proc.pid, clients,
                                 SECONDS, the_cases=the_cases, warmup=2.0))
    summary = stats.summary()
    print(summary)
    assert summary["errors"] == 0, summary["first_errors"]
    assert summary["grpc"] > 0 and summary["rest"] > 0
    first, last = stats.rss_windows()
    assert last - first <= RSS_GROWTH_LIMIT
