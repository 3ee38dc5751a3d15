"""The real container image, run with podman (host network, free loopback ports).

Run by ``make test-container`` (deploy/test-container.sh builds the image and sets
LOSSD_TEST_IMAGE and the podman environment); skipped in ``make test``. Figures
(start-to-ready, shutdown) are written to LOSSD_CONTAINER_REPORT for the script to print.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lossd_client import LossClient

IMAGE = os.environ.get("LOSSD_TEST_IMAGE", "")
REPORT = os.environ.get("LOSSD_CONTAINER_REPORT", "")
GRACE, DRAIN = 30.0, 1.0
READY_TIMEOUT = 300.0

pytestmark = pytest.mark.skipif(not IMAGE, reason="container tests run through make test-container")


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=timeout)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def record(key: str, value: Any) -> None:
    if not REPORT:
        return
    data = json.loads(open(REPORT).read()) if os.path.exists(REPORT) and os.path.getsize(REPORT) else {}
    data[key] = value
    with open(REPORT, "w") as f:
        json.dump(data, f, indent=1)


def http(url: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


class Container:
    """One ``podman run -d`` of the image with its own ports; ``stop`` removes it."""

    def __init__(self, *run_args: str, env: dict[str, str] | None = None) -> None:
        self.grpc_port, self.http_port = free_ports(2)
        self.name = f"lossd-test-{uuid.uuid4().hex[:8]}"
        variables = {"LOSSD_HOST": "127.0.0.1", "LOSSD_GRPC_PORT": str(self.grpc_port),
                     "LOSSD_HTTP_PORT": str(self.http_port), "LOSSD_GRACE": str(GRACE),
                     "LOSSD_DRAIN_DELAY": str(DRAIN), **(env or {})}
        flags = [part for k, v in variables.items() for part in ("-e", f"{k}={v}")]
        self.started = time.monotonic()
        podman("run", "-d", "--name", self.name, *flags, *run_args, IMAGE)
        self.ready_seconds = self._wait_ready()

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _wait_ready(self) -> float:
        deadline = self.started + READY_TIMEOUT
        while time.monotonic() < deadline:
            if http(self.http_base + "/readyz", timeout=2)[0] == 200:
                return time.monotonic() - self.started
            if self.state() not in ("running", "created", "configured", "initialized"):
                raise RuntimeError(f"container {self.state()}: {self.logs()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"not ready in {READY_TIMEOUT}s: {self.logs()[-3000:]}")

    def state(self) -> str:
        return podman("inspect", "--format", "{{.State.Status}}", self.name, check=False).stdout.strip()

    def logs(self) -> str:
        run = podman("logs", self.name, check=False)
        return run.stdout + run.stderr

    def metrics(self) -> dict[str, list]:
        status, body = http(self.http_base + "/metrics")
        assert status == 200, status
        return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


def sample(samples: list, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


@pytest.fixture(scope="module")
def container():
    c = Container()
    record("start_to_ready_seconds", round(c.ready_seconds, 2))
    yield c
    c.remove()


def test_image_config() -> None:
    (config,) = json.loads(podman("image", "inspect", IMAGE).stdout)
    cfg = config["Config"]
    uid = cfg["User"].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, cfg["User"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["LOSSD_HOST"] == "0.0.0.0"
    assert env["NUMBA_CACHE_DIR"].startswith("/")
    assert {"50051/tcp", "8080/tcp"} <= set(cfg["ExposedPorts"])
    assert cfg["Entrypoint"][0] == "dumb-init"
    assert "org.opencontainers.image.title" in cfg["Labels"]
    health = cfg.get("Healthcheck") or config.get("Healthcheck")
    assert health and "/readyz" in " ".join(health["Test"])
    record("image_size_mb", round(config["Size"] / 1e6, 1))


def test_pid1_is_an_init_and_the_server_is_not_root(container: Container) -> None:
    pid1 = podman("exec", container.name, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert pid1[0].endswith("dumb-init")
    top = podman("top", container.name, "pid", "user", "args").stdout
    server = [line for line in top.splitlines() if "lossd serve" in line and "dumb-init" not in line]
    assert server and server[0].split()[1] == "10001", top


def test_warm_up_loaded_the_baked_numba_cache(container: Container) -> None:
    # every kernel came from the cache compiled into the image: warm-up compiled nothing
    line = next(x for x in container.logs().splitlines() if x.startswith("lossd ready in"))
    warm = float(line.split("warm-up ")[1].rstrip("s)"))
    record("warm_up_seconds", warm)
    samples = container.metrics()["lossd_jit_compile_seconds"]
    assert samples and max(s.value for s in samples) < 5.0, max(s.value for s in samples)


def test_evaluate_through_the_sdk(container: Container) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = rng.standard_normal((64, 10)).astype(np.float32)
    with LossClient(container.grpc_target, timeout=60) as client:
        assert {s.id for s in client.list_losses()} >= {"mse", "softmax_cross_entropy"}
        result = client.evaluate("mse", {"input": x, "target": y})
    diff = x.astype(np.float64) - y
    assert result.loss == pytest.approx(np.mean(diff**2), rel=1e-5)
    np.testing.assert_allclose(result.grads["input"], 2 * diff / diff.size, rtol=1e-4, atol=1e-8)


def test_evaluate_through_rest(container: Container) -> None:
    body = json.dumps({"inputs": {
        "input": {"dtype": "float32", "shape": [2, 2], "data": [0.5, 1.5, -2.0, 3.0]},
        "target": {"dtype": "float32", "shape": [2, 2], "data": [0.0, 1.0, -1.5, 2.0]}},
        "grads": ["input"]}).encode()
    status, reply = http(container.http_base + "/v1/losses/mse:evaluate", body)
    assert status == 200, reply
    out = json.loads(reply)
    assert out["loss"]["data"] == [pytest.approx(0.4375)]
    assert out["grads"]["input"]["data"] == pytest.approx([0.25, 0.25, -0.25, 0.5])


def test_metrics_count_the_calls(container: Container) -> None:
    before = container.metrics()
    calls = 5
    with LossClient(container.grpc_target, timeout=60) as client:
        for _ in range(calls):
            client.evaluate("l1", {"input": np.ones(8, np.float32), "target": np.zeros(8, np.float32)})
    after = container.metrics()
    labels = {"transport": "grpc", "method": "Evaluate", "loss": "l1", "code": "OK"}
    assert (sample(after["lossd_requests"], "lossd_requests_total", **labels)
            - sample(before["lossd_requests"], "lossd_requests_total", **labels)) == calls
    assert sample(after["lossd_ready"], "lossd_ready") == 1


def test_sigterm_drains_a_long_call_and_exits_zero() -> None:
    c = Container()
    try:
        rng = np.random.default_rng(2)
        n, d, classes = 2048, 512, 20000
        inputs = {"features": rng.standard_normal((n, d)).astype(np.float32),
                  "weight": rng.standard_normal((classes, d)).astype(np.float32),
                  "labels": rng.integers(0, classes, n).astype(np.int64)}
        outcome: dict[str, Any] = {}

        def call() -> None:
            with LossClient(c.grpc_target, timeout=300) as client:
                try:
                    outcome["result"] = client.evaluate("arcface", inputs)
                except Exception as exc:  # noqa: BLE001 - reported below
                    outcome["error"] = exc
                outcome["done"] = time.monotonic()

        worker = threading.Thread(target=call)
        worker.start()
        deadline = time.monotonic() + 60
        while sample(c.metrics()["lossd_requests_in_flight"], "lossd_requests_in_flight",
                     transport="grpc") < 1:
            assert time.monotonic() < deadline and worker.is_alive(), outcome
            time.sleep(0.02)
        # the call is in flight on the server: stop the container as an orchestrator does
        signalled = time.monotonic()
        podman("kill", "--signal", "TERM", c.name)
        exit_code = int(podman("wait", c.name, timeout=GRACE + DRAIN + 60).stdout.strip())
        stopped = time.monotonic() - signalled
        worker.join(60)
        logs = c.logs()
        assert "error" not in outcome, (outcome, logs[-2000:])
        result = outcome["result"]
        assert np.isfinite(result.loss) and result.grads["weight"].shape == (classes, d)
        assert exit_code == 0, logs[-2000:]
        assert "shutting down" in logs and "lossd stopped" in logs
        assert stopped < GRACE + DRAIN + 5
        record("sigterm_to_exit_seconds", round(stopped, 2))
    finally:
        c.remove()


def test_read_only_root_with_a_cache_volume() -> None:
    """As in deploy/k8s: read-only root, NUMBA_CACHE_DIR a writable volume seeded from the image."""
    volume = f"lossd-cache-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", volume)
    try:
        (config,) = json.loads(podman("image", "inspect", IMAGE).stdout)
        cache_dir = dict(e.split("=", 1) for e in config["Config"]["Env"])["NUMBA_CACHE_DIR"]
        c = Container("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                      "-v", f"{volume}:{cache_dir}")
        try:
            record("read_only_start_to_ready_seconds", round(c.ready_seconds, 2))
            with LossClient(c.grpc_target, timeout=60) as client:
                result = client.evaluate("mse", {"input": np.ones(4, np.float32),
                                                 "target": np.zeros(4, np.float32)})
            assert result.loss == pytest.approx(1.0)
            samples = c.metrics()["lossd_jit_compile_seconds"]
            assert max(s.value for s in samples) < 5.0
        finally:
            c.remove()
    finally:
        podman("volume", "rm", "-f", volume, check=False)
