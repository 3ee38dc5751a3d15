"""Faults against real server processes.

* SIGTERM under load: calls in flight complete, new calls are refused with UNAVAILABLE
  (gRPC) / 503 (REST), and the process exits 0 within the grace period.
* SIGKILL of one of three replicas under load: the SDK, given the list of addresses,
  retries elsewhere and the client sees no failure; the killed replica, restarted on its
  ports, is ready without compiling anything (every kernel comes from Numba's on-disk
  cache: no cache file is written) and answers correctly.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import threading
import time

import httpx
import numpy as np
import pytest

import lossd
from lossd_client import LossClient, LossdError
from tests.serverproc import start_server

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRACE = 30.0
rng = np.random.default_rng(3)
# heavy enough that calls are in flight whenever the signal lands
HEAVY = ("softmax_cross_entropy", {"input": rng.normal(size=(4096, 1000)).astype(np.float32),
                                   "target": rng.integers(0, 1000, 4096)}, {})
LIGHT = ("mse", {"input": rng.normal(size=(64, 64)), "target": rng.normal(size=(64, 64))}, {})


@pytest.fixture(scope="module")
def expected() -> dict[str, float]:
    return {name: float(lossd.evaluate(name, inputs, params).loss) for name, inputs, params in (HEAVY, LIGHT)}


class Loop(threading.Thread):
    """Calls ``case`` again and again until stopped (or ``until`` is set); records
    (start, end, outcome) per call, outcome 'OK', 'WRONG' or the error's code name."""

    def __init__(self, client: LossClient, case: tuple, expected: float, stop: threading.Event,
                 stop_when_refused: bool = False) -> None:
        super().__init__(daemon=True)
        self.client, self.case, self.expected, self.stop = client, case, expected, stop
        self.stop_when_refused = stop_when_refused  # as a client would go to another replica
        self.calls: list[tuple[float, float, str, str]] = []

    def run(self) -> None:
        name, inputs, params = self.case
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                value = float(self.client.evaluate(name, inputs, params).loss)
                outcome, message = ("OK" if np.isclose(value, self.expected, rtol=1e-5) else "WRONG"), ""
            except LossdError as exc:
                outcome, message = exc.code.name, exc.message
                time.sleep(0.02)
            self.calls.append((t0, time.monotonic(), outcome, message))
            if self.stop_when_refused and outcome == "UNAVAILABLE":
                return


def grpc_in_flight(http_base: str) -> int:
    text = httpx.get(http_base + "/metrics", timeout=10).text
    match = re.search(r'^lossd_requests_in_flight\{transport="grpc"\} ([0-9.e+]+)$', text, re.M)
    return int(float(match.group(1))) if match else 0


def test_sigterm_under_load_drains_and_exits_zero(expected):
    """--drain-delay 0 so the calls in flight when SIGTERM lands are in flight when
    refusing starts (the drain delay itself is tested in tests/service/test_lifecycle.py)."""
    server = start_server("--grace", str(GRACE), "--drain-delay", "0")
    stop = threading.Event()
    clients = [LossClient(server.grpc_target, timeout=60, retries=1) for _ in range(3)]
    loops = [Loop(c, HEAVY, expected["softmax_cross_entropy"], stop, stop_when_refused=True)
             for c in clients]
    rest_codes: list[int] = []

    def rest_loop() -> None:
        body = {"inputs": {"input": {"dtype": "float32", "shape": [2], "data": [1.0, 2.0]},
                           "target": {"dtype": "float32", "shape": [2], "data": [0.0, 0.0]}}}
        with httpx.Client(base_url=server.http_base, timeout=60) as http:
            while not stop.is_set():
                try:
                    rest_codes.append(http.post("/v1/losses/mse:evaluate", json=body).status_code)
                except httpx.TransportError:  # the listener is gone
                    rest_codes.append(0)
                    time.sleep(0.02)

    rest = threading.Thread(target=rest_loop, daemon=True)
    for t in (*loops, rest):
        t.start()
    while sum(c[2] == "OK" for loop in loops for c in loop.calls) < 6:  # load established
        time.sleep(0.05)
    while grpc_in_flight(server.http_base) < 1:  # a call is being processed right now
        time.sleep(0.005)
    sigterm = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(GRACE + 30)
    exited = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for t in (*loops, rest):
        t.join(120)
    for c in clients:
        c.close()

    calls = [c for loop in loops for c in loop.calls]
    outcomes = {c[2] for c in calls}
    completed = [c for c in calls if c[0] < sigterm < c[1] and c[2] == "OK"]
    refused = [c for c in calls if c[2] == "UNAVAILABLE"]
    print(f"SIGTERM: {len(calls)} gRPC calls, outcomes {sorted(outcomes)}, {len(completed)} in flight "
          f"completed, {len(refused)} refused, exit {code} after {exited - sigterm:.2f}s; "
          f"REST codes {sorted(set(rest_codes))}")
    assert code == 0 and "lossd stopped" in server.lines
    assert outcomes <= {"OK", "UNAVAILABLE"}, outcomes  # never CANCELLED, INTERNAL or a wrong value
    assert all(c[2] == "OK" for c in calls if c[1] < sigterm)
    assert completed  # calls in flight at SIGTERM completed with the right value
    assert len(refused) == len(loops)  # each client's next call refused with UNAVAILABLE
    assert all("shutting down" in c[3] or "failing" in c[3] for c in refused), refused
    assert set(rest_codes) <= {200, 503, 0} and 200 in rest_codes
    assert exited - sigterm < GRACE  # within the grace period


def cache_files() -> dict[str, int]:
    """Numba cache files (index and data) and their modification times."""
    base = pathlib.Path(os.environ.get("NUMBA_CACHE_DIR") or ROOT / "service")
    return {str(p): p.stat().st_mtime_ns for p in base.rglob("*") if p.suffix in (".nbi", ".nbc")}


def test_sigkill_one_replica_client_sees_no_failure_and_restart_uses_cache(expected):
    replicas = [start_server(wait_ready=False) for _ in range(3)]
    for r in replicas:
        r.wait_for("ready in")
    targets = [r.grpc_target for r in replicas]
    stop = threading.Event()
    clients = [LossClient(targets, timeout=60) for _ in range(4)]  # retries on UNAVAILABLE
    loops = [Loop(c, case, expected[case[0]], stop)
             for c, case in zip(clients, (HEAVY, LIGHT, HEAVY, LIGHT))]
    victim = replicas[1]
    try:
        for t in loops:
            t.start()
        while sum(c[2] == "OK" for loop in loops for c in loop.calls) < 20:
            time.sleep(0.05)
        kill = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        assert victim.proc.wait(30) == -signal.SIGKILL
        while sum(c[0] > kill and c[2] == "OK" for loop in loops for c in loop.calls) < 40:
            time.sleep(0.05)

        before = cache_files()
        grpc_port = victim.grpc_target.rsplit(":", 1)[1]
        http_port = victim.http_base.rsplit(":", 1)[1]
        restarted = start_server("--grpc-port", grpc_port, "--http-port", http_port)
        ready_line = next(line for line in restarted.lines if "ready in" in line)
        replicas[1] = restarted
        after = cache_files()
        with LossClient(restarted.grpc_target, timeout=60, retries=1) as direct:
            value = float(direct.evaluate(*LIGHT).loss)
        while sum(c[0] > time.monotonic() - 1 for loop in loops for c in loop.calls) < 4:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in loops:
            t.join(120)
        for c in clients:
            c.close()
        codes = [r.terminate() for r in replicas if r.proc.poll() is None]

    calls = [c for loop in loops for c in loop.calls]
    failures = [c for c in calls if c[2] != "OK"]
    around = [c for c in calls if c[0] < kill < c[1]]
    warm = re.search(r"warm-up ([0-9.]+)s", ready_line)
    print(f"SIGKILL: {len(calls)} calls over 3 replicas, {len(failures)} failures, {len(around)} in "
          f"flight at the kill; restart {ready_line.strip()!r}; {len(before)} cache files, "
          f"{sum(before.get(k) != v for k, v in after.items())} written on restart")
    assert failures == [], failures[:5]
    assert before and after == before  # the restart compiled nothing: all from the cache
    assert warm is not None and np.isclose(value, expected["mse"], rtol=1e-12)
    assert codes == [0, 0, 0]
