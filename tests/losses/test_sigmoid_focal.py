"""Tests of sigmoid_focal (metric.md §2a)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
import lossd_client
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.sigmoid_focal import reference

LOSS = "sigmoid_focal"
DTYPES = [np.float32, np.float64]
SHAPES = [(1,), (7, 3), (3, 5, 7), (64, 81)]     # 64*81 >= 4096: parallel build
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
VARIANTS = [{}, {"alpha": -1.0}, {"alpha": 0.0, "gamma": 0.0}, {"alpha": 1.0, "gamma": 0.5},
            {"alpha": 0.7, "gamma": 3.5}, {"gamma": 1}]


def make(shape, dtype, seed=0, soft=False, scale=3.0):
    """Binary targets, or (soft) a mix of soft and binary targets."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    t = rng.integers(0, 2, shape).astype(np.float64)
    if soft:
        t = np.where(rng.random(shape) < 0.6, rng.random(shape), t)
    return {"logits": x, "targets": t.astype(dtype)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v) or "default")
def test_against_reference(dtype, shape, reduction, variant):
    inputs = make(shape, dtype, seed=len(shape), soft=True)
    check_against_reference(LOSS, inputs, {"reduction": reduction, **variant}, reference)


@pytest.mark.parametrize("variant", [{}, {"alpha": -1, "gamma": 0.5}, {"gamma": 0.0}, {"gamma": 1.3}])
@pytest.mark.parametrize("soft", [False, True])
def test_finite_differences(variant, soft):
    inputs = make((3, 4), np.float64, seed=4, soft=soft, scale=2.0)
    check_finite_differences(LOSS, inputs, {"reduction": "sum", **variant})
    check_finite_differences(LOSS, inputs, {"reduction": "batchmean", **variant})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", VARIANTS[:3])
def test_binary_targets(dtype, variant):
    for reduction in REDUCTIONS:
        check_against_reference(LOSS, make((5, 9), dtype, seed=9), {"reduction": reduction, **variant},
                                reference)


def test_mean_and_batchmean_differ_for_rank2():
    inputs = make((4, 5), np.float64, seed=1)
    m = lossd.evaluate(LOSS, inputs, {"reduction": "mean"})
    b = lossd.evaluate(LOSS, inputs, {"reduction": "batchmean"})
    s = lossd.evaluate(LOSS, inputs, {"reduction": "sum"})
    np.testing.assert_allclose(m.loss, s.loss / 20, rtol=1e-14)
    np.testing.assert_allclose(b.loss, s.loss / 4, rtol=1e-14)


def test_known_values_and_gamma_zero_is_bce():
    x = np.array([0.0, 0.0, 2.0, -3.0])
    t = np.array([1.0, 0.0, 1.0, 0.25])
    bce = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    p = 1 / (1 + np.exp(-x))
    res = lossd.evaluate("focal_loss", {"logits": x, "targets": t},
                         {"gamma": 0.0, "alpha": -1.0, "reduction": "none"})
    assert res.loss_id == LOSS
    np.testing.assert_allclose(res.loss, bce, rtol=1e-15)
    np.testing.assert_allclose(res.grads["logits"], p - t, rtol=1e-14, atol=1e-16)
    assert res.loss[0] == math.log(2.0)
    res = lossd.evaluate(LOSS, {"logits": x[:2], "targets": t[:2]}, {"reduction": "none"})
    # x = 0: q = 1/2, a_t = 0.25 (t = 1) or 0.75 (t = 0)
    np.testing.assert_allclose(res.loss, [0.25 * 0.25 * math.log(2), 0.75 * 0.25 * math.log(2)], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 2.0])
def test_saturated_logits_are_finite(dtype, gamma):
    x = np.array([40.0, -40.0, 800.0, -800.0, 80.0, -80.0], dtype)
    t = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0], dtype)
    res = lossd.evaluate(LOSS, {"logits": x, "targets": t}, {"gamma": gamma, "reduction": "none"})
    assert np.all(np.isfinite(res.loss)) and np.all(np.isfinite(res.grads["logits"]))
    np.testing.assert_array_equal(res.grads["logits"][2:4], [0.0, 0.0])
    assert res.grads["logits"][4] > 0 and res.grads["logits"][5] < 0
    check_against_reference(LOSS, {"logits": x[:2], "targets": t[:2]}, {"gamma": gamma}, reference)


def test_result_dtype_through_server(client):
    for dtype in DTYPES:
        res = client.evaluate("focal_loss", make((3, 4, 2), dtype))
        assert res.loss.dtype == dtype and res.grads["logits"].dtype == dtype
        assert res.grads["logits"].shape == (3, 4, 2) and res.loss.shape == ()
        res = client.evaluate(LOSS, make((3, 4, 2), dtype), {"reduction": "none"})
        assert res.loss.shape == (3, 4, 2) and set(res.grads) == {"logits"}


def test_negative_alpha_accepted_boundaries(client):
    inputs = make((2, 3), np.float64)
    a = client.evaluate(LOSS, inputs, {"alpha": -0.5})
    b = client.evaluate(LOSS, inputs, {"alpha": -1})
    assert a.loss == b.loss
    client.evaluate(LOSS, inputs, {"alpha": 1.0, "gamma": 0.0})
    client.evaluate(LOSS, {"logits": inputs["logits"], "targets": np.zeros((2, 3))}, {})


REJECTIONS = {
    "targets_above_one": ({"targets": np.full((2, 3), 1.5)}, {}, "inputs.targets"),
    "targets_negative": ({"targets": np.full((2, 3), -0.1)}, {}, "inputs.targets"),
    "targets_shape": ({"targets": np.zeros((2, 4))}, {}, "inputs.targets"),
    "targets_broadcast": ({"targets": np.zeros((1, 3))}, {}, "inputs.targets"),
    "targets_int": ({"targets": np.zeros((2, 3), np.int64)}, {}, "inputs.targets"),
    "targets_mixed": ({"targets": np.zeros((2, 3), np.float32)}, {}, "inputs.targets"),
    "logits_nan": ({"logits": np.full((2, 3), np.nan)}, {}, "inputs.logits"),
    "logits_int": ({"logits": np.zeros((2, 3), np.int32)}, {}, "inputs.logits"),
    "logits_0d": ({"logits": np.array(1.0), "targets": np.array(1.0)}, {}, "inputs.logits"),
    "logits_empty": ({"logits": np.zeros((0, 3)), "targets": np.zeros((0, 3))}, {}, "inputs.logits"),
    "gamma_negative": ({}, {"gamma": -1.0}, "params.gamma"),
    "alpha_above_one": ({}, {"alpha": 1.5}, "params.alpha"),
    "alpha_bool": ({}, {"alpha": True}, "params.alpha"),
    "reduction": ({}, {"reduction": "mean_positive"}, "params.reduction"),
    "missing_targets": ({"targets": None}, {}, "inputs.targets"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejections(client, case):
    over, params, field = REJECTIONS[case]
    inputs = {**make((2, 3), np.float64), **over}
    inputs = {k: v for k, v in inputs.items() if v is not None}
    with pytest.raises(lossd_client.InvalidArgument) as exc:
        client.evaluate(LOSS, inputs, params)
    assert field in exc.value.message
    assert field in [v.field for v in exc.value.field_violations]


def test_targets_not_differentiable(client):
    with pytest.raises(lossd_client.InvalidArgument) as exc:
        client.evaluate(LOSS, make((2, 3), np.float64), {}, grads=["targets"])
    assert "grads" in [v.field for v in exc.value.field_violations]


@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_matches_torchvision_formula(alpha, reduction):
    # torchvision.ops.sigmoid_focal_loss, written out in torch (torchvision is not installed)
    torch = pytest.importorskip("torch")
    inputs = make((6, 7), np.float64, seed=3, soft=True)
    x = torch.tensor(inputs["logits"], requires_grad=True)
    t = torch.tensor(inputs["targets"])
    p = torch.sigmoid(x)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** 2.0)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    loss = {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
    loss.sum().backward()
    res = lossd.evaluate(LOSS, inputs, {"alpha": alpha, "gamma": 2.0, "reduction": reduction})
    np.testing.assert_allclose(res.loss, loss.detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(res.grads["logits"], x.grad.numpy(), rtol=1e-9, atol=1e-13)
