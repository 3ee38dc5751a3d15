"""kl_div (core.md §5.1) against the float64 reference, finite differences, the -Inf
target gradient at p = 0, batchmean = true KL, and rejections through the server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import assert_rejected, result_dtype_test
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.kl_div import reference

LOSS = "kl_div"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (64, 8, 9)]          # the last has 4608 elements: parallel build
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
TARGETS = ["probs", "probs_with_zeros", "log_target"]


def _log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def _data(shape, dtype, seed=0, target="probs"):
    rng = np.random.default_rng(seed)
    x = _log_softmax(rng.normal(0.0, 1.5, shape))
    lp = _log_softmax(rng.normal(0.0, 1.5, shape))
    if target == "log_target":
        t = lp
    else:
        t = np.exp(lp)
        if target == "probs_with_zeros":
            t[rng.uniform(size=shape) < 0.25] = 0.0
    return {"input": x.astype(dtype), "target": t.astype(dtype)}


def _params(reduction, target):
    return {"reduction": reduction, **({"log_target": True} if target == "log_target" else {})}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, target):
    inputs = _data(shape, dtype, seed=sum(shape), target=target)
    check_against_reference(LOSS, inputs, _params(reduction, target), reference)


@pytest.mark.parametrize("target", ["probs", "log_target"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction, target):
    inputs = _data((3, 4), np.float64, seed=6, target=target)
    check_finite_differences(LOSS, inputs, _params(reduction, target))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_probability_target_gradient_is_minus_inf(dtype):
    x = np.log(np.array([[0.25, 0.25, 0.5]])).astype(dtype)
    p = np.array([[0.0, 0.5, 0.5]], dtype)
    for reduction in REDUCTIONS:
        r = lossd.evaluate(LOSS, {"input": x, "target": p}, {"reduction": reduction})
        g = r.grads["target"]
        assert g[0, 0] == -np.inf and np.all(np.isfinite(g[0, 1:]))
        assert np.all(np.isfinite(r.loss)) and np.all(np.isfinite(r.grads["input"]))
    r = lossd.evaluate(LOSS, {"input": x, "target": p}, {"reduction": "none"})
    xd = x.astype(np.float64)
    assert_close(r.loss, [[0.0, 0.5 * (np.log(0.5) - xd[0, 1]), 0.0]], dtype, what="loss")
    assert_close(r.grads["input"], [[0.0, -0.5, -0.5]], dtype, what="d/dinput")
    assert_close(r.grads["target"], [[-np.inf, np.log(0.5) + 1 - xd[0, 1], 1.0]], dtype, what="d/dtarget")


def test_batchmean_is_the_true_kl():
    inputs = _data((5, 6), np.float64, seed=2)
    q, p = np.exp(inputs["input"]), inputs["target"]
    kl = (p * np.log(p / q)).sum() / 5
    r = lossd.evaluate(LOSS, inputs, {"reduction": "batchmean"})
    np.testing.assert_allclose(r.loss, kl, rtol=1e-12)
    rl = lossd.evaluate(LOSS, {"input": inputs["input"], "target": np.log(p)},
                        {"reduction": "batchmean", "log_target": True})
    np.testing.assert_allclose(rl.loss, kl, rtol=1e-12)
    m = lossd.evaluate(LOSS, inputs, {"reduction": "mean"})
    np.testing.assert_allclose(m.loss, kl / 6, rtol=1e-12)


def test_log_target_overflow_is_not_nan():
    x = np.array([[710.0, 709.0, 0.0]])
    t = np.array([[710.0, 710.0, -1.0]])
    r = lossd.evaluate(LOSS, {"input": x, "target": t}, {"reduction": "none", "log_target": True})
    assert r.loss[0, 0] == 0.0 and r.loss[0, 1] == np.inf
    np.testing.assert_allclose(r.loss[0, 2], -np.exp(-1.0), rtol=1e-14)
    assert not np.any(np.isnan(r.grads["target"]))


test_result_dtype_through_server = result_dtype_test(
    LOSS, lambda dtype: _data((3, 4), dtype, seed=2), reference, ["input", "target"])


def test_rejections(client):
    good = _data((2, 3), np.float64, seed=5)
    x, p = good["input"], good["target"]
    neg = p.copy()
    neg[1, 1] = -1e-9
    assert_rejected(client, LOSS, {"input": x, "target": neg}, {}, "inputs.target")
    # negative log p is fine with log_target, and p > 1 is not checked (as PyTorch)
    client.evaluate(LOSS, {"input": x, "target": np.log(p)}, {"log_target": True})
    client.evaluate(LOSS, {"input": x, "target": p + 1.0}, {})
    assert_rejected(client, LOSS, {"input": x, "target": p[:, :2]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": p.astype(np.float32)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": p}, {"log_target": 1}, "params.log_target")
    assert_rejected(client, LOSS, {"input": x, "target": p}, {"log_target": "true"}, "params.log_target")
    assert_rejected(client, LOSS, {"input": x, "target": p}, {"reduction": "batch_mean"}, "params.reduction")
    bad = x.copy()
    bad[0, 0] = -np.inf
    assert_rejected(client, LOSS, {"input": bad, "target": p}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x, "target": p}, {}, "grads", grads=["input", "target", "input"])
