"""sigmoid_cross_entropy (core.md §4.3) against the float64 reference, finite differences,
extreme logits, the alias, and every rejection through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import assert_rejected, result_dtype_test
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.sigmoid_cross_entropy import reference

LOSS = "sigmoid_cross_entropy"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (16, 3, 10, 10)]      # the last has 4800 elements: parallel build
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
OPERANDS = [(None, None), ("full", None), (None, "channel"), ("trailing", "full"), ("scalar", "scalar"),
            ("leading", "channel")]


def _operand(kind, shape, rng, dtype):
    if kind is None:
        return None
    oshape = {"full": shape, "trailing": (shape[-1],), "scalar": (1,),
              "leading": (shape[0],) + (1,) * (len(shape) - 1),
              "channel": (shape[1],) + (1,) * (len(shape) - 2)}[kind]
    return rng.uniform(0.1, 3.0, oshape).astype(dtype)


def _data(shape, dtype, seed=0, weight=None, pos_weight=None, scale=4.0):
    rng = np.random.default_rng(seed)
    inputs = {"input": rng.normal(0.0, scale, shape).astype(dtype),
              "target": rng.uniform(0.0, 1.0, shape).astype(dtype)}
    for name, kind in (("weight", weight), ("pos_weight", pos_weight)):
        value = _operand(kind, shape, rng, dtype)
        if value is not None:
            inputs[name] = value
    return inputs


@pytest.mark.parametrize("operands", OPERANDS, ids=lambda o: f"w={o[0]},pw={o[1]}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, operands):
    inputs = _data(shape, dtype, seed=shape[0] + len(shape), weight=operands[0], pos_weight=operands[1])
    check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("operands", [(None, None), ("trailing", "channel")])
def test_finite_differences(reduction, operands):
    inputs = _data((2, 3, 4), np.float64, seed=9, weight=operands[0], pos_weight=operands[1], scale=2.0)
    check_finite_differences(LOSS, inputs, {"reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_no_overflow(dtype):
    x = np.array([[80.0, -80.0, 1e4, -1e4, 80.0, -1e4, 1e4, 0.0]], dtype)
    y = np.array([[1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.5]], dtype)
    result = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    e80 = np.exp(-80.0)
    expected = [[e80, e80, 0.0, 0.0, 80.0 + e80, 1e4, 5e3, np.log(2.0)]]
    assert_close(result.loss, expected, dtype, what="loss")
    assert np.all(np.isfinite(result.loss)) and np.all(np.isfinite(result.grads["input"]))
    # sigmoid(x) - y; and d/dy = -x
    expected_gx = [[-e80, e80, 0.0, 0.0, 1.0 - e80, -1.0, 0.5, 0.0]]
    assert_close(result.grads["input"], expected_gx, dtype, what="d/dinput")
    assert_close(result.grads["target"], -x.astype(np.float64), dtype, what="d/dtarget")
    # tiny losses keep their relative precision (log1p, not log(1 + tiny))
    if dtype is np.float64:
        np.testing.assert_allclose(result.loss[0, :2], [e80, e80], rtol=1e-14)
    for reduction in REDUCTIONS:
        check_against_reference(LOSS, {"input": x, "target": y, "pos_weight": np.array([2.5], dtype)},
                                {"reduction": reduction}, reference)



@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_float32_wide_logits_against_reference(reduction):
    # float32 terms: exp(-|x|) from 1 down to subnormal and 0 (|x| up to 120), all targets
    rng = np.random.default_rng(17)
    x = np.concatenate([np.linspace(-120, 120, 481), rng.normal(0, 30, 200)]).astype(np.float32)
    y = rng.choice([0.0, 1.0, 0.5, 0.9], x.size).astype(np.float32)
    inputs = {"input": x.reshape(1, -1), "target": y.reshape(1, -1),
              "weight": rng.uniform(0.1, 2.0, x.size).astype(np.float32).reshape(1, -1)}
    check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)

def test_pos_weight_formula_by_hand():
    x = np.array([[0.3, -1.2]])
    y = np.array([[1.0, 0.25]])
    pi = np.array([3.0, 0.5])
    w = np.array([[2.0]])
    r = lossd.evaluate(LOSS, {"input": x, "target": y, "weight": w, "pos_weight": pi}, {"reduction": "sum"})
    ls = np.log(1.0 / (1.0 + np.exp(-x)))
    l1s = np.log(1.0 - 1.0 / (1.0 + np.exp(-x)))
    expected = -(w * (pi * y * ls + (1 - y) * l1s)).sum()
    np.testing.assert_allclose(r.loss, expected, rtol=1e-12)


def test_batchmean_is_caffe_normalisation():
    # Caffe: -[x (y - 1{x>=0}) - log(1 + exp(x - 2 x 1{x>=0}))], summed, divided by N (BATCH_SIZE)
    inputs = _data((4, 6), np.float64, seed=3)
    x, y = inputs["input"], inputs["target"]
    pos = (x >= 0).astype(np.float64)
    caffe = -(x * (y - pos) - np.log1p(np.exp(x - 2 * x * pos))).sum() / 4
    r = lossd.evaluate(LOSS, inputs, {"reduction": "batchmean"})
    np.testing.assert_allclose(r.loss, caffe, rtol=1e-12)
    full = lossd.evaluate(LOSS, inputs, {"reduction": "mean"})
    np.testing.assert_allclose(full.loss, caffe * 4 / 24, rtol=1e-12)


def test_alias_resolves(client):
    inputs = _data((3, 4), np.float64, seed=1, weight="trailing", pos_weight="trailing")
    a = client.evaluate("binary_cross_entropy_with_logits", inputs, {"reduction": "none"})
    b = lossd.evaluate(LOSS, inputs, {"reduction": "none"})
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.grads["input"], b.grads["input"])
    assert a.loss_id == LOSS


test_result_dtype_through_server = result_dtype_test(
    LOSS, lambda dtype: _data((3, 4), dtype, seed=2, weight="trailing", pos_weight="scalar"), reference,
    ["input", "target"])


def test_rejections(client):
    good = _data((2, 3, 4), np.float64, seed=5)
    x, y = good["input"], good["target"]
    assert_rejected(client, LOSS, {"input": x, "target": y + 1.0}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y - 1.0}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": -np.ones(4)}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "pos_weight": -np.ones((3, 1))}, {},
                    "inputs.pos_weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "pos_weight": np.ones(3)}, {},
                    "inputs.pos_weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones((2, 3))}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones((1, 2, 3, 4))}, {},
                    "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y[:1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y.astype(np.float32)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y, "pos_weight": np.ones(4, np.float32)}, {},
                    "inputs.pos_weight")
    assert_rejected(client, LOSS, {"input": x.astype(np.int64), "target": y}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x.astype(np.float16), "target": y}, {}, "inputs.input")
    bad = x.copy()
    bad[0, 0, 0] = -np.inf
    assert_rejected(client, LOSS, {"input": bad, "target": y}, {}, "inputs.input")
    bad = np.ones(4)
    bad[1] = np.nan
    assert_rejected(client, LOSS, {"input": x, "target": y, "pos_weight": bad}, {}, "inputs.pos_weight")
    assert_rejected(client, LOSS, {"input": x, "target": y}, {"reduction": "elementwise_mean"},
                    "params.reduction")
    assert_rejected(client, LOSS, {"input": x, "target": y, "pos_weight": np.ones(4)}, {}, "grads",
                    grads=["pos_weight"])
    assert_rejected(client, LOSS, {"input": x, "target": y}, {}, "grads", grads=["input", "input"])
    assert_rejected(client, "binary_cross_entropy_with_logits", {"input": x, "target": y + 2.0}, {},
                    "inputs.target")
