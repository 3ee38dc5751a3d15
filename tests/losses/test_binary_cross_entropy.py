"""binary_cross_entropy (core.md §3.1) against the float64 reference, finite differences,
hand-picked values at x in {0, 1}, and every rejection through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import assert_rejected, result_dtype_test
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.binary_cross_entropy import reference

LOSS = "binary_cross_entropy"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (64, 8, 9)]          # the last has 4608 elements: parallel build
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
WEIGHTS = [None, "full", "trailing", "leading", "scalar"]


def _weight(kind, shape, rng, dtype):
    if kind is None:
        return None
    wshape = {"full": shape, "trailing": (shape[-1],), "leading": (shape[0],) + (1,) * (len(shape) - 1),
              "scalar": (1,)}[kind]
    return rng.uniform(0.1, 2.0, wshape).astype(dtype)


def _data(shape, dtype, seed=0, weight=None, lo=0.02, hi=0.98):
    rng = np.random.default_rng(seed)
    inputs = {"input": rng.uniform(lo, hi, shape).astype(dtype),
              "target": rng.uniform(0.0, 1.0, shape).astype(dtype)}
    w = _weight(weight, shape, rng, dtype)
    if w is not None:
        inputs["weight"] = w
    return inputs


@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, weight):
    inputs = _data(shape, dtype, seed=len(shape) * 10 + shape[0], weight=weight)
    check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_targets_and_grads_subset(dtype):
    rng = np.random.default_rng(3)
    inputs = _data((5, 4), dtype, seed=4)
    inputs["target"] = rng.integers(0, 2, (5, 4)).astype(dtype)
    check_against_reference(LOSS, inputs, {"reduction": "sum"}, reference, grads=["target"])
    check_against_reference(LOSS, inputs, {}, reference, grads=["input"])
    check_against_reference(LOSS, inputs, {}, reference, grads=[])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, "trailing"])
def test_finite_differences(reduction, weight):
    inputs = _data((3, 4), np.float64, seed=7, weight=weight, lo=0.1, hi=0.9)
    check_finite_differences(LOSS, inputs, {"reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_probabilities_exactly_0_and_1(dtype):
    x = np.array([[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]], dtype)
    y = np.array([[1.0, 0.0, 0.0, 1.0, 0.25, 0.75]], dtype)
    result = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    # L(0) = -100 (clamped), L(1) = 0
    expected_loss = [[100.0, 100.0, 0.0, 0.0, 25.0, 25.0]]
    assert_close(result.loss, expected_loss, dtype, what="loss")
    # PyTorch's backward: (x - y) / max(x (1 - x), 1e-12), about 1e12, compared relatively
    expected_gx = [[-1e12, 1e12, 0.0, 0.0, -0.25e12, 0.25e12]]
    assert_close(result.grads["input"], expected_gx, dtype, what="d/dinput")
    assert np.all(np.abs(result.grads["input"][0, :2] / np.float64(1e12)) - 1 < 1e-6)
    # derivative of the clamped forward: L(1 - x) - L(x) = +-100, finite (not +-Inf)
    expected_gy = [[100.0, -100.0, 100.0, -100.0, 100.0, -100.0]]
    assert_close(result.grads["target"], expected_gy, dtype, what="d/dtarget")
    assert np.all(np.isfinite(result.grads["target"]))
    check_against_reference(LOSS, {"input": x, "target": y}, {"reduction": "mean"}, reference)


def test_clamp_active_near_zero():
    # log(1e-50) = -115 < -100: the loss is clamped at 100 while the gradient keeps PyTorch's formula
    x = np.array([1e-50, 1e-40, 0.5])
    y = np.array([1.0, 1.0, 1.0])
    result = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    np.testing.assert_allclose(result.loss, [100.0, -np.log(1e-40), np.log(2.0)], rtol=1e-12)
    np.testing.assert_allclose(result.grads["input"], [-1e12, -1e12, -2.0], rtol=1e-12)
    np.testing.assert_allclose(result.grads["target"], [100.0, np.log1p(-1e-40) - np.log(1e-40), 0.0],
                               rtol=1e-12, atol=1e-15)


def test_log1p_precision_small_x():
    x = np.array([1e-10, 1e-14])
    y = np.zeros(2)
    result = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    np.testing.assert_allclose(result.loss, -np.log1p(-x), rtol=1e-14)  # log(1 - x) would be 1e-7 off



@pytest.mark.parametrize("dtype", DTYPES)
def test_target_gradient_near_one_half_keeps_relative_precision(dtype):
    # dR/dy = log((1 - x)/x): log1p(-x) - log(x) cancels near x = 1/2; the atanh series keeps
    # full relative precision there (float32 requests: float32 terms)
    half = dtype(0.5)
    up, down = half, half
    xs = []
    for _ in range(40):
        up, down = np.nextafter(up, dtype(1)), np.nextafter(down, dtype(0))
        xs += [up, down]
    x = np.array(xs + [0.4375, 0.44, 0.56, 0.5625, 0.3, 0.7, 0.5], dtype)[None]
    result = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"reduction": "none"})
    x64 = x.astype(np.float64)
    exact = np.log1p((1.0 - 2.0 * x64) / x64)
    rtol = 1e-5 if dtype is np.float32 else 1e-12
    np.testing.assert_allclose(result.grads["target"], exact, rtol=rtol, atol=0.0)


def test_float32_probabilities_near_0_and_1_and_subnormal():
    x = np.array([[1e-45, 1e-40, 1e-38, 1e-30, 1e-12, 1e-7, 1e-3, 0.999, 1 - 2.0**-23, 1 - 2.0**-24]],
                 np.float32)
    for y in (np.zeros_like(x), np.ones_like(x), np.full_like(x, 0.3)):
        for reduction in ("none", "sum"):
            check_against_reference(LOSS, {"input": x, "target": y}, {"reduction": reduction}, reference)

def test_weight_broadcast_matches_explicit(client):
    inputs = _data((4, 3, 2, 5), np.float64, seed=11)
    w = np.array([0.5, 1.0, 2.0]).reshape(3, 1, 1)
    full = np.ascontiguousarray(np.broadcast_to(w, (4, 3, 2, 5)))
    a = client.evaluate(LOSS, {**inputs, "weight": w}, {"reduction": "none"})
    b = client.evaluate(LOSS, {**inputs, "weight": full}, {"reduction": "none"})
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.grads["input"], b.grads["input"])
    assert set(a.grads) == {"input", "target"}


test_result_dtype_through_server = result_dtype_test(
    LOSS, lambda dtype: _data((3, 4), dtype, seed=2, weight="trailing"), reference)


def test_rejections(client):
    good = _data((3, 4), np.float64, seed=5)
    x, y = good["input"], good["target"]
    assert_rejected(client, LOSS, {"input": x * 0 + 1.5, "target": y}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x - 1.0, "target": y}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x, "target": y + 1.0}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": -y - 0.01}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": -np.ones(4)}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones(3)}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones((2, 3, 4))}, {},
                    "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y[:, :3]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y.reshape(4, 3)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y.astype(np.float32)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones(4, np.float32)}, {},
                    "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": (y > 0.5).astype(np.int64)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones(4, np.int64)}, {},
                    "inputs.weight")
    bad = y.copy()
    bad[1, 2] = np.nan
    assert_rejected(client, LOSS, {"input": x, "target": bad}, {}, "inputs.target")
    bad = np.ones(4)
    bad[0] = np.inf
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": bad}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y}, {"reduction": "avg"}, "params.reduction")
    assert_rejected(client, LOSS, {"input": x, "target": y}, {"pos_weight": 1.0}, "params.pos_weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones(4)}, {}, "grads",
                    grads=["weight"])
    assert_rejected(client, LOSS, {"input": x}, {}, "inputs.target")


def test_boundary_values_accepted(client):
    x = np.array([[0.0, 1.0], [0.5, 1.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    result = client.evaluate(LOSS, {"input": x, "target": y, "weight": np.zeros(1)}, {"reduction": "sum"})
    assert result.loss.shape == () and result.loss == 0.0
    assert np.all(result.grads["input"] == 0) and np.all(result.grads["target"] == 0)
