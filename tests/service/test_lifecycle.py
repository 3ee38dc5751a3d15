"""Server lifecycle: health transitions, readiness over HTTP, reflection, graceful drain."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from lossd_client import LossClient
from tests.serverproc import start_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _status(channel, service="lossd.v1.LossService"):
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def _http(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_health_transitions_and_drain_on_sigterm():
    server = start_server("--grace", "20", "--drain-delay", "3", wait_ready=False)
    channel = grpc.insecure_channel(server.grpc_target)
    seen, ready_codes = [], []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = _status(channel)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == SERVING:
            break
        code, body = _http(server.http_base + "/readyz")
        ready_codes.append(code)
        assert code == 200 or body["status"] == "warming up"
        time.sleep(0.01)
    assert seen[-1] == SERVING and set(seen) <= {NOT_SERVING, SERVING}
    assert seen == sorted(seen, key=lambda s: s == SERVING)  # NOT_SERVING* then SERVING
    assert ready_codes == sorted(ready_codes, reverse=True)  # 503* then 200*
    assert _http(server.http_base + "/readyz") == (200, {"status": "ready"})
    assert _http(server.http_base + "/healthz")[0] == 200
    server.wait_for("ready in")

    x = np.ones((4, 5), np.float32)
    with LossClient(server.grpc_target, timeout=30) as client:
        with client.stream() as stream:
            before = stream.evaluate("mse", {"input": x, "target": x * 0})
            server.proc.send_signal(15)  # SIGTERM while this stream call is in flight
            deadline = time.monotonic() + 10
            while _status(channel) != NOT_SERVING and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _status(channel) == NOT_SERVING
            assert _http(server.http_base + "/readyz")[1] == {"status": "draining"}
            # the in-flight call goes on and completes
            during = stream.evaluate("mse", {"input": x, "target": x * 0}, {"reduction": "sum"})
        assert before.loss == 1.0 and during.loss == 20.0
    channel.close()
    assert server.proc.wait(30) == 0
    assert "lossd stopped" in server.lines


def test_reflection_lists_services(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = set(db.get_services())
        assert "lossd.v1.LossService" in services
        assert "grpc.health.v1.Health" in services
        descriptor = db.FindFileContainingSymbol("lossd.v1.LossService")
        assert descriptor.package == "lossd.v1"


def test_health_serving_on_session_server(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        assert _status(channel) == SERVING
        assert _status(channel, "") == SERVING


def test_cli_losses_table():
    out = subprocess.run([sys.executable, "-m", "lossd.cli", "losses"], capture_output=True,
                         text=True, check=True).stdout
    assert "softmax_cross_entropy (aliases: cross_entropy)" in out
    assert "label_smoothing" in out and "ignore_index" in out


def test_port_zero_prints_ports(server):
    host, port = server.grpc_target.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert server.http_base.startswith("http://127.0.0.1:")
