"""Tests of center (metric.md §1)."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
import lossd_client
from tests.losses._shared import case_rejections_test, split_variant, variant_id
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences, widen
from tests.reference.center import reference, reference_outputs

LOSS = "center"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3, 2), (7, 5, 4), (1031, 5, 13)]      # (N, D, C): batch 1, odd, N*D >= 4096 (parallel)
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
_ids = variant_id


VARIANTS = [{}, {"lambda_c": 0.003}, {"lambda_c": 0.0}, {"logits": True}, {"logits": True, "lambda_c": 2.5},
            {"update": True, "alpha": 0.2}, {"logits": True, "update": True, "alpha": 1.0}]


def make(shape, dtype, seed=0, logits=False):
    rng = np.random.default_rng(seed)
    n, d, c = shape
    inputs = {"features": rng.standard_normal((n, d)).astype(dtype), "labels": rng.integers(0, c, n),
              "centers": rng.standard_normal((c, d)).astype(dtype)}
    if n > 1:
        inputs["labels"][inputs["labels"] == c - 1] = 0       # one class absent from the batch
    if logits:
        inputs["logits"] = (rng.standard_normal((n, c)) * 2).astype(dtype)
    return inputs


def _split(variant):
    return split_variant(variant, "logits")


def check_outputs(result, inputs, params, dtype):
    if params.get("update"):
        assert set(result.outputs) == {"center_delta", "centers_updated"}
        expected = reference_outputs(widen(inputs), params)
        for name, ref in expected.items():
            assert_close(result.outputs[name], ref, np.dtype(dtype), what=name)
    else:
        assert result.outputs == {}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_against_reference(dtype, shape, reduction, variant):
    with_logits, params = _split(variant)
    params["reduction"] = reduction
    inputs = make(shape, dtype, seed=shape[0], logits=with_logits)
    result = check_against_reference(LOSS, inputs, params, reference)
    check_outputs(result, inputs, params, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_update_outputs_whatever_grads_asks(dtype):
    inputs = make((9, 3, 4), dtype, seed=1, logits=True)
    params = {"update": True, "alpha": 0.3}
    for grads in ([], ["logits"], ["centers"], ["features", "centers"]):
        result = check_against_reference(LOSS, inputs, params, reference, grads=grads)
        check_outputs(result, inputs, params, dtype)
        assert all(v.dtype == dtype and v.shape == (4, 3) for v in result.outputs.values())


@pytest.mark.parametrize("variant", VARIANTS[:5], ids=_ids)
def test_finite_differences(variant):
    with_logits, params = _split(variant)
    inputs = make((5, 3, 3), np.float64, seed=2, logits=with_logits)
    check_finite_differences(LOSS, inputs, {"reduction": "sum", **params})
    check_finite_differences(LOSS, inputs, {"reduction": "mean", **params})


def test_tiny_known_update():
    x = np.array([[1.0, 2.0], [3.0, 2.0], [10.0, 0.0]])
    c = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    y = np.array([0, 0, 1])
    res = lossd.evaluate(LOSS, {"features": x, "labels": y, "centers": c},
                         {"update": True, "alpha": 0.5, "reduction": "none", "lambda_c": 2.0})
    # class 0: n = 2, sum (c - x) = (-4, -4), delta = (-4/3, -4/3); class 1: n = 1, (1-10, 1-0)/2
    delta = np.array([[-4 / 3, -4 / 3], [-4.5, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(res.outputs["center_delta"], delta, rtol=1e-15)
    np.testing.assert_allclose(res.outputs["centers_updated"], c - 0.5 * delta, rtol=1e-15)
    np.testing.assert_allclose(res.loss, [5.0, 13.0, 82.0], rtol=1e-15)        # lambda/2 ||x - c||^2
    np.testing.assert_allclose(res.grads["centers"], [[-8.0, -8.0], [-18.0, 2.0], [0.0, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(res.grads["features"], 2.0 * (x - c[y]), rtol=1e-15)
    # outputs ignore reduction and lambda_c
    res2 = lossd.evaluate(LOSS, {"features": x, "labels": y, "centers": c},
                          {"update": True, "alpha": 0.5, "lambda_c": 0.0, "reduction": "mean"}, grads=[])
    np.testing.assert_array_equal(res2.outputs["center_delta"], res.outputs["center_delta"])
    assert res2.grads == {} and res2.loss == 0.0


def test_caffe_normalisation_and_logits_term():
    # Caffe CenterLossLayer: sum ||x - c||^2 / (2N) = center with lambda_c = 1, reduction mean
    inputs = make((6, 4, 3), np.float64, seed=4)
    res = lossd.evaluate(LOSS, inputs)
    x, c, y = inputs["features"], inputs["centers"], inputs["labels"]
    assert res.loss == pytest.approx(np.sum((x - c[y]) ** 2) / 12, rel=1e-14)
    # the joined objective is the center loss plus softmax cross entropy
    with_logits = make((6, 4, 3), np.float64, seed=4, logits=True)
    ce = lossd.evaluate("softmax_cross_entropy", {"input": with_logits["logits"], "target": y})
    both = lossd.evaluate(LOSS, with_logits)
    assert both.loss == pytest.approx(res.loss + ce.loss, rel=1e-14)
    np.testing.assert_allclose(both.grads["logits"], ce.grads["input"], rtol=1e-13, atol=1e-16)


def test_many_rows_one_class_parallel():
    # every row in one class: the center gradient gathers 5000 rows
    inputs = make((5000, 3, 2), np.float32, seed=6)
    inputs["labels"] = np.zeros(5000, np.int64)
    result = check_against_reference(LOSS, inputs, {"update": True, "reduction": "sum"}, reference)
    check_outputs(result, inputs, {"update": True}, np.float32)


def test_schema_declares_outputs():
    schema = next(s for s in lossd.list_losses() if s["id"] == LOSS)
    assert {o["name"] for o in schema["outputs"]} == {"center_delta", "centers_updated"}


def test_through_server(client):
    for dtype in DTYPES:
        inputs = make((5, 3, 4), dtype, logits=True)
        res = client.evaluate(LOSS, inputs, {"update": True}, grads=[])
        assert res.loss.dtype == dtype and res.grads == {}
        assert set(res.outputs) == {"center_delta", "centers_updated"}
        assert all(v.dtype == dtype for v in res.outputs.values())
        ref = reference_outputs(widen(inputs), {})
        assert_close(res.outputs["centers_updated"], ref["centers_updated"], np.dtype(dtype))
        res = client.evaluate(LOSS, inputs)
        assert set(res.grads) == {"features", "centers", "logits"} and res.outputs == {}


REJECTIONS = {
    "label_high": ({"labels": np.array([0, 1, 4, 2, 3])}, {}, "inputs.labels"),
    "label_negative": ({"labels": np.array([0, 1, -1, 2, 3])}, {}, "inputs.labels"),
    "label_float": ({"labels": np.zeros(5)}, {}, "inputs.labels"),
    "label_shape": ({"labels": np.zeros(4, np.int64)}, {}, "inputs.labels"),
    "centers_dim": ({"centers": np.zeros((4, 2))}, {}, "inputs.centers"),
    "centers_rank1": ({"centers": np.zeros(4)}, {}, "inputs.centers"),
    "logits_shape": ({"logits": np.zeros((5, 3))}, {}, "inputs.logits"),
    "logits_rows": ({"logits": np.zeros((4, 4))}, {}, "inputs.logits"),
    "logits_mixed": ({"logits": np.zeros((5, 4), np.float32)}, {}, "inputs.logits"),
    "features_rank3": ({"features": np.zeros((5, 3, 1))}, {}, "inputs.features"),
    "features_nan": ({"features": np.full((5, 3), np.nan)}, {}, "inputs.features"),
    "centers_empty": ({"centers": np.zeros((0, 3))}, {}, "inputs.centers"),
    "lambda_negative": ({}, {"lambda_c": -0.1}, "params.lambda_c"),
    "alpha_above_one": ({}, {"alpha": 1.5}, "params.alpha"),
    "alpha_negative": ({}, {"alpha": -0.5}, "params.alpha"),
    "update_int": ({}, {"update": 1}, "params.update"),
    "unknown_param": ({}, {"lambda": 1.0}, "params.lambda"),
}


test_rejections = case_rejections_test(LOSS, REJECTIONS, make((5, 3, 4), np.float64, logits=True))


def test_grads_rejections(client):
    for grads in (["labels"], ["logits"], ["centers", "centers"]):
        with pytest.raises(lossd_client.InvalidArgument) as exc:
            client.evaluate(LOSS, make((5, 3, 4), np.float64), {}, grads=grads)
        assert "grads" in [v.field for v in exc.value.field_violations]
