"""nll_loss (core.md §4.2) against the float64 reference, finite differences, ignore_index,
the W = 0 rule, the identity with softmax_cross_entropy, and rejections through the server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import assert_rejected, result_dtype_test
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.nll_loss import reference

LOSS = "nll_loss"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (5, 4, 3, 2), (64, 10, 8)]   # the last has 5120 elements: parallel build
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
# (weight?, ignore_index): default, weighted, an ignore_index that occurs, one inside [0, C)
VARIANTS = [(False, None), (True, None), (True, -1), (False, 1)]


def _log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def _data(shape, dtype, seed=0, weight=False, ignore=None):
    rng = np.random.default_rng(seed)
    x = _log_softmax(rng.normal(0.0, 2.0, shape))
    y = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    if ignore is not None and ignore < 0:
        y[rng.uniform(size=y.shape) < 0.3] = ignore
    inputs = {"input": x.astype(dtype), "target": y}
    if weight:
        inputs["weight"] = rng.uniform(0.1, 2.0, shape[1]).astype(dtype)
    return inputs


def _params(reduction, ignore):
    return {"reduction": reduction, **({} if ignore is None else {"ignore_index": ignore})}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"w={v[0]},ignore={v[1]}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, variant):
    weight, ignore = variant
    inputs = _data(shape, dtype, seed=sum(shape), weight=weight, ignore=ignore)
    check_against_reference(LOSS, inputs, _params(reduction, ignore), reference)


def test_int32_targets():
    inputs = _data((6, 4), np.float64, seed=3, weight=True, ignore=-5)
    a = lossd.evaluate(LOSS, inputs, {"ignore_index": -5})
    b = lossd.evaluate(LOSS, {**inputs, "target": inputs["target"].astype(np.int32)}, {"ignore_index": -5})
    np.testing.assert_array_equal(a.loss, b.loss)
    check_against_reference(LOSS, {**inputs, "target": inputs["target"].astype(np.int32)},
                            {"ignore_index": -5}, reference)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction):
    inputs = _data((3, 4, 2), np.float64, seed=1, weight=True, ignore=-100)
    check_finite_differences(LOSS, inputs, _params(reduction, -100))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ignore_index_hits_by_hand(dtype):
    x = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5]])).astype(dtype)
    y = np.array([2, -100, 1])
    w = np.array([1.0, 2.0, 4.0], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": y, "weight": w}, {"reduction": "none"})
    xd = x.astype(np.float64)
    assert_close(r.loss, [-4.0 * xd[0, 2], 0.0, -2.0 * xd[2, 1]], dtype, what="none")
    assert r.loss[1] == 0
    assert_close(r.grads["input"], [[0, 0, -4.0], [0, 0, 0], [0, -2.0, 0]], dtype, what="grad")
    mean = lossd.evaluate(LOSS, {"input": x, "target": y, "weight": w}, {})
    assert_close(mean.loss, (-4.0 * xd[0, 2] - 2.0 * xd[2, 1]) / 6.0, dtype, what="mean")
    assert_close(mean.grads["input"], [[0, 0, -4 / 6], [0, 0, 0], [0, -2 / 6, 0]], dtype, what="mean grad")
    # ignore_index inside [0, C): class 2 is ignored
    inside = lossd.evaluate(LOSS, {"input": x, "target": np.array([2, 0, 1])}, {"ignore_index": 2})
    assert_close(inside.loss, -(xd[1, 0] + xd[2, 1]) / 2, dtype, what="inside")
    assert np.all(inside.grads["input"][0] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["all_ignored", "zero_weights"])
def test_zero_total_weight_is_nan_with_zero_gradient(dtype, case):
    x = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])).astype(dtype)
    if case == "all_ignored":
        inputs = {"input": x, "target": np.array([-100, -100])}
    else:
        inputs = {"input": x, "target": np.array([0, 2]), "weight": np.array([0.0, 1.0, 0.0], dtype)}
    r = lossd.evaluate(LOSS, inputs, {"reduction": "mean"})
    assert np.isnan(r.loss) and r.loss.dtype == dtype
    assert np.all(r.grads["input"] == 0)
    check_against_reference(LOSS, inputs, {"reduction": "mean"}, reference)
    for reduction in ("sum", "batchmean"):
        other = lossd.evaluate(LOSS, inputs, {"reduction": reduction})
        assert other.loss == 0.0


@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 2, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_identity_with_softmax_cross_entropy(shape, weighted):
    rng = np.random.default_rng(8)
    z = rng.normal(0.0, 3.0, shape)
    y = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    y.reshape(-1)[0] = -100
    extra = {"weight": rng.uniform(0.5, 2.0, shape[1])} if weighted else {}
    for reduction in REDUCTIONS:
        ce = lossd.evaluate("softmax_cross_entropy", {"input": z, "target": y, **extra},
                            {"reduction": reduction})
        nll = lossd.evaluate(LOSS, {"input": _log_softmax(z), "target": y, **extra}, {"reduction": reduction},
                             grads=[])
        np.testing.assert_allclose(nll.loss, ce.loss, rtol=1e-12, atol=1e-14)


test_result_dtype_through_server = result_dtype_test(
    LOSS, lambda dtype: _data((3, 4, 2), dtype, seed=2, weight=True, ignore=-100), reference, ["input"])


def test_rejections(client):
    good = _data((3, 4, 2), np.float64, seed=5)
    x, y = good["input"], good["target"]
    assert_rejected(client, LOSS, {"input": x, "target": np.where(y == 0, 4, y)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": np.where(y == 0, -1, y)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": np.where(y == 0, -1, y)}, {"ignore_index": -2},
                    "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y[:, :1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x, "target": y.astype(np.float64)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": x[:, 0, 0], "target": y[:, 0]}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones(3)}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": -np.ones(4)}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y, "weight": np.ones(4, np.float32)}, {},
                    "inputs.weight")
    assert_rejected(client, LOSS, {"input": x, "target": y}, {"ignore_index": 1.0}, "params.ignore_index")
    assert_rejected(client, LOSS, {"input": x, "target": y}, {"ignore_index": True}, "params.ignore_index")
    assert_rejected(client, LOSS, {"input": x, "target": y}, {"reduction": "weighted"}, "params.reduction")
    assert_rejected(client, LOSS, {"input": x, "target": y}, {"label_smoothing": 0.1},
                    "params.label_smoothing")
    assert_rejected(client, LOSS, {"input": x, "target": y}, {}, "grads", grads=["target"])
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    assert_rejected(client, LOSS, {"input": bad, "target": y}, {}, "inputs.input")
