"""Without a Numba threading layer (no OpenMP runtime: a pip install on a system without
libgomp) the server still starts and serves every size from the serial builds, and says so
once in its log. Simulated with NUMBA_THREADING_LAYER=tbb where TBB is not installed: Numba
then cannot load any layer, exactly as with omp and no libgomp."""

from __future__ import annotations

import importlib.util
import subprocess
import time

import numpy as np
import pytest

from lossd_client import LossClient
from tests.serverproc import start_server

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tbb") is not None,
                                reason="TBB is installed: the layer would load")


def test_server_without_threading_layer_serves_serially():
    server = start_server("--drain-delay", "0", "--log-level", "info", stderr=subprocess.STDOUT,
                          env={"NUMBA_THREADING_LAYER": "tbb", "LOSSD_PARALLEL_THRESHOLD": "4096"})
    try:
        rng = np.random.default_rng(3)
        x = rng.standard_normal(50_000).astype(np.float32)  # over the parallel threshold
        y = rng.standard_normal(50_000).astype(np.float32)
        z = rng.standard_normal((2_000, 10)).astype(np.float64)
        labels = rng.integers(0, 10, 2_000)
        with LossClient(server.grpc_target, timeout=60) as client:
            mse = client.evaluate("mse", {"input": x, "target": y}, {"reduction": "sum"})
            ce = client.evaluate("softmax_cross_entropy", {"input": z, "target": labels})
        d = x.astype(np.float64) - y
        np.testing.assert_allclose(mse.loss, (d * d).sum(), rtol=1e-5)
        np.testing.assert_allclose(mse.grads["input"], 2 * d, rtol=1e-5, atol=1e-6)
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        np.testing.assert_allclose(ce.loss, (lse - z[np.arange(2_000), labels]).mean(), rtol=1e-12)
        for _ in range(600):  # logged right after ready (or before it: nothing to load)
            if any("parallel builds loaded" in line for line in server.lines):
                break
            time.sleep(0.1)
    finally:
        assert server.terminate() == 0
    log = "\n".join(server.lines)
    assert log.count("no Numba threading layer could be loaded") == 1, log[-3000:]
    assert '"signatures": 0' in next(line for line in server.lines if "parallel builds loaded" in line)
