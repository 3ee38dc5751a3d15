"""Tests of contrastive (metric.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
import lossd_client
from tests.losses._shared import assert_rejected
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.contrastive import reference

LOSS = "contrastive"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (1031, 5)]          # batch 1, odd, >= 4096 elements (parallel build)
REDUCTIONS = ["none", "sum", "mean", "batchmean"]


def make(shape, dtype, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    n = shape[0]
    x1 = (rng.standard_normal(shape) * scale).astype(dtype)
    x2 = (rng.standard_normal(shape) * scale).astype(dtype)
    label = rng.integers(0, 2, n)
    if n == 1:
        label[:] = 0
    return {"x1": x1, "x2": x2, "label": label}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [None, 1.7])
def test_against_reference(dtype, shape, reduction, margin):
    params = {"reduction": reduction}
    if margin is not None:
        params["margin"] = margin
    inputs = make(shape, dtype)
    result = check_against_reference(LOSS, inputs, params, reference)
    if reduction != "none":
        assert result.loss.shape == ()
    # a case with both branches active: some dissimilar pairs inside the margin
    ref_loss, _ = reference({k: np.asarray(v, np.float64) if k != "label" else v
                             for k, v in inputs.items()}, {"margin": margin or 1.0, "reduction": "none"})
    dissimilar = inputs["label"] == 0
    assert np.any(ref_loss[dissimilar] > 0)


def test_int32_labels_and_grads_subset():
    inputs = make((9, 4), np.float64, seed=3)
    inputs["label"] = inputs["label"].astype(np.int32)
    check_against_reference(LOSS, inputs, {"margin": 2.0}, reference, grads=["x2"])
    res = lossd.evaluate(LOSS, inputs, {}, grads=[])
    assert res.grads == {}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 2.5])
def test_finite_differences(reduction, margin):
    inputs = make((6, 3), np.float64, seed=5)
    inputs["label"] = np.array([1, 0, 0, 1, 0, 0])
    d = np.linalg.norm(inputs["x1"] - inputs["x2"], axis=1)
    assert np.all(np.abs(d - margin) > 1e-3) and np.all(d > 1e-3)
    check_finite_differences(LOSS, inputs, {"reduction": reduction, "margin": margin})


def test_known_values():
    # pairs at distances 3 (3-4-5 geometry) and 5
    x1 = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    x2 = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 3.0], [1.0, 1.0]])
    label = np.array([1, 0, 0, 0])
    res = lossd.evaluate(LOSS, {"x1": x1, "x2": x2, "label": label}, {"margin": 4.0, "reduction": "none"})
    # similar d=5: 12.5; dissimilar d=5 >= margin: 0; dissimilar d=3: 0.5*(4-3)^2; d=0: 0.5*16
    np.testing.assert_allclose(res.loss, [12.5, 0.0, 0.5, 8.0], rtol=1e-15)
    g = res.grads["x1"]
    np.testing.assert_allclose(g[0], [3.0, 4.0], rtol=1e-15)
    np.testing.assert_array_equal(g[1], [0.0, 0.0])
    np.testing.assert_allclose(g[2], -(4.0 - 3.0) * np.array([0.0, -3.0]) / 3.0, rtol=1e-15)
    np.testing.assert_array_equal(g[3], [0.0, 0.0])      # d = 0, dissimilar: gradient 0
    np.testing.assert_array_equal(res.grads["x2"], -g)


def test_margin_makes_loss_zero():
    # every dissimilar pair beyond the margin, every similar pair identical: loss exactly 0
    x1 = np.array([[0.0, 0.0], [1.0, 2.0], [5.0, 5.0]], np.float32)
    x2 = np.array([[2.0, 0.0], [1.0, 2.0], [5.0, 4.0]], np.float32)
    res = lossd.evaluate(LOSS, {"x1": x1, "x2": x2, "label": np.array([0, 1, 0])}, {"margin": 1.0})
    assert res.loss == 0.0 and res.loss.dtype == np.float32
    assert not np.any(res.grads["x1"]) and not np.any(res.grads["x2"])


def test_float32_accumulates_in_float64():
    rng = np.random.default_rng(1)
    x1 = (1000.0 + rng.random((3, 4096))).astype(np.float32)
    x2 = (1000.0 + rng.random((3, 4096))).astype(np.float32)
    inputs = {"x1": x1, "x2": x2, "label": np.array([1, 0, 1])}
    check_against_reference(LOSS, inputs, {"margin": 30.0, "reduction": "none"}, reference)


def test_result_dtype_through_server(client):
    for dtype in DTYPES:
        res = client.evaluate(LOSS, make((5, 3), dtype))
        assert res.loss.dtype == dtype and res.grads["x1"].dtype == dtype and res.grads["x2"].dtype == dtype


@pytest.mark.parametrize("case", [
    "label_value", "label_float", "label_shape", "x2_shape", "x1_rank1", "x1_rank3", "empty",
    "nan", "inf", "mixed", "int_x1", "margin_zero", "margin_negative", "margin_bool", "unknown_param",
    "reduction", "grads_label", "grads_twice", "missing", "extra_input", "float16",
])
def test_rejections(client, case):
    inputs = make((4, 3), np.float64)
    params: dict = {}
    field = {"label_value": "inputs.label", "label_float": "inputs.label", "label_shape": "inputs.label",
             "x2_shape": "inputs.x2", "x1_rank1": "inputs.x1", "x1_rank3": "inputs.x1", "empty": "inputs.x1",
             "nan": "inputs.x2", "inf": "inputs.x1", "mixed": "inputs.x2", "int_x1": "inputs.x1",
             "margin_zero": "params.margin", "margin_negative": "params.margin",
             "margin_bool": "params.margin", "unknown_param": "params.p", "reduction": "params.reduction",
             "grads_label": "grads", "grads_twice": "grads", "missing": "inputs.label",
             "extra_input": "inputs.weight", "float16": "inputs.x1"}[case]
    if case == "label_value":
        inputs["label"] = np.array([0, 1, 2, 1])
    elif case == "label_float":
        inputs["label"] = inputs["label"].astype(np.float64)
    elif case == "label_shape":
        inputs["label"] = np.array([0, 1, 1])
    elif case == "x2_shape":
        inputs["x2"] = inputs["x2"][:, :2].copy()
    elif case == "x1_rank1":
        inputs = {"x1": np.ones(4), "x2": np.ones(4), "label": np.array([0, 1, 1, 0])}
    elif case == "x1_rank3":
        inputs["x1"] = np.ones((4, 3, 1))
    elif case == "empty":
        inputs = {"x1": np.ones((4, 0)), "x2": np.ones((4, 0)), "label": np.array([0, 1, 1, 0])}
    elif case == "nan":
        inputs["x2"] = inputs["x2"].copy()
        inputs["x2"][1, 1] = np.nan
    elif case == "inf":
        inputs["x1"] = inputs["x1"].copy()
        inputs["x1"][0, 2] = -np.inf
    elif case == "mixed":
        inputs["x2"] = inputs["x2"].astype(np.float32)
    elif case == "int_x1":
        inputs["x1"] = np.ones((4, 3), np.int64)
    elif case == "float16":
        inputs["x1"] = inputs["x1"].astype(np.float16)
    elif case == "margin_zero":
        params["margin"] = 0.0
    elif case == "margin_negative":
        params["margin"] = -1.0
    elif case == "margin_bool":
        params["margin"] = True
    elif case == "unknown_param":
        params["p"] = 2.0
    elif case == "reduction":
        params["reduction"] = "avg"
    elif case == "missing":
        del inputs["label"]
    elif case == "extra_input":
        inputs["weight"] = np.ones(4)
    if case.startswith("grads"):
        with pytest.raises(lossd_client.InvalidArgument) as exc:
            client.evaluate(LOSS, inputs, params, grads=["label"] if case == "grads_label" else ["x1", "x1"])
        assert field in [v.field for v in exc.value.field_violations]
        return
    assert_rejected(client, LOSS, inputs, params, field)


def test_margin_integer_accepted():
    inputs = make((4, 3), np.float64)
    a = lossd.evaluate(LOSS, inputs, {"margin": 2})
    b = lossd.evaluate(LOSS, inputs, {"margin": 2.0})
    assert a.loss == b.loss
