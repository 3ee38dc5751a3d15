"""DataPlane memory policy: the output buffers of a large request leave the buffer pool
(freed with the result, before the transport copies the response), smaller ones stay
pooled; the result arrives through the holder, equal to the in-process result."""

from __future__ import annotations

import asyncio
import platform

import numpy as np
import pytest

from lossd.core import memory
from lossd.core.dataplane import LARGE_BYTES, DataPlane, Timings
from lossd.core.evaluate import evaluate
from lossd.losses._pool import POOL

N = 1 << 19  # 2 MiB of float32 per array: pooled buffers


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {"input": rng.standard_normal(N, dtype=np.float32),
            "target": rng.standard_normal(N, dtype=np.float32)}


def _evaluate(plane: DataPlane, inputs: dict[str, np.ndarray], nbytes: int):
    return asyncio.run(plane.evaluate("mse", inputs, {"reduction": "none"}, None, request_id="r",
                                      nbytes=nbytes, timings=Timings()))


@pytest.mark.parametrize("large", [False, True])
def test_large_results_leave_the_pool(plane, large):
    inputs = _inputs()
    POOL.clear()
    nbytes = LARGE_BYTES if large else LARGE_BYTES - 1  # both above the inline limit
    assert nbytes > plane.settings.inline_bytes
    result = _evaluate(plane, inputs, nbytes)
    expected = evaluate("mse", inputs, {"reduction": "none"})
    for name in ("input", "target"):
        np.testing.assert_array_equal(result.grads[name], expected.grads[name])
    np.testing.assert_array_equal(result.loss, expected.loss)
    held = 0 if large else sum(a.nbytes for a in [result.loss, *result.grads.values()])
    assert POOL.held_bytes() == held + sum(a.nbytes for a in [expected.loss, *expected.grads.values()])


def test_trim_is_available_on_glibc():
    assert memory.trim() is (platform.libc_ver()[0] == "glibc")
