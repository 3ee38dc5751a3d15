"""The Node.js example client (client/examples/node) against a live server.

Installs its npm dependencies (``npm ci`` from the committed package-lock.json) when
node_modules is missing, runs it, and checks every printed number against the Python
SDK's answer for the same request. Skipped only when ``node`` is not installed.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "client" / "examples" / "node"


@pytest.fixture(scope="module")
def node_example() -> pathlib.Path:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node.js example client cannot run")
    if not (EXAMPLE / "node_modules" / "@grpc" / "grpc-js").exists():
        npm = shutil.which("npm")
        assert npm is not None, "node is installed but npm is not"
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return EXAMPLE


def test_node_client_prints_the_servers_numbers(node_example, server, client):
    done = subprocess.run(["node", "evaluate.js", server.grpc_target], cwd=node_example,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3

    mse = client.evaluate("mse", {"input": np.array([[1, 2], [3, 4]], np.float32),
                                  "target": np.zeros((2, 2), np.float32)})
    assert lines[0]["loss_id"] == "mse"
    assert lines[0]["loss"] == [float(mse.loss)] == [7.5]
    assert lines[0]["grads"]["input"] == mse.grads["input"].ravel().tolist()
    assert lines[0]["grads"]["target"] == mse.grads["target"].ravel().tolist()

    ce = client.evaluate("softmax_cross_entropy",
                         {"input": np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]),
                          "target": np.array([0, 2], np.int64)}, {"label_smoothing": 0.1})
    assert lines[1]["loss_id"] == "softmax_cross_entropy"
    assert lines[1]["loss"] == [float(ce.loss)]  # float64 bytes: exact through JSON
    assert lines[1]["grads"]["input"] == ce.grads["input"].ravel().tolist()
    assert list(lines[1]["grads"]) == ["input"]  # integer targets have no gradient

    assert lines[2]["error"] == "NOT_FOUND"
    assert "no_such_loss" in lines[2]["message"]
