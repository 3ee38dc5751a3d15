"""Tests of softmax_focal (metric.md §2b)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
import lossd_client
from lossd.losses import softmax_focal as focal
from tests.losses._shared import case_rejections_test, split_variant
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.softmax_focal import reference

LOSS = "softmax_focal"
DTYPES = [np.float32, np.float64]
#: batch 1, odd, >= 4096 elements (parallel build); the kernel runs by columns for C <= 40
#: (several chunks, several parallel blocks for (3000, 7)) and by rows above
SHAPES = [(1, 4), (7, 3), (517, 9), (3000, 7), (60, 50)]
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
VARIANTS = [{}, {"gamma": 0.0}, {"alpha": 0.25, "gamma": 0.5}, {"alpha": 2.0, "gamma": 3.3},
            {"class_alpha": True}, {"class_alpha": True, "alpha": 5.0, "gamma": 1.0}]


def make(shape, dtype, seed=0, class_alpha=False, scale=2.0):
    rng = np.random.default_rng(seed)
    n, c = shape
    inputs = {"logits": (rng.standard_normal(shape) * scale).astype(dtype), "labels": rng.integers(0, c, n)}
    if class_alpha:
        inputs["class_alpha"] = rng.random(c).astype(dtype)
    return inputs


def _split(variant):
    return split_variant(variant, "class_alpha")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v) or "default")
def test_against_reference(dtype, shape, reduction, variant):
    with_alpha, params = _split(variant)
    inputs = make(shape, dtype, seed=shape[0], class_alpha=with_alpha)
    check_against_reference(LOSS, inputs, {"reduction": reduction, **params}, reference)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v) or "default")
def test_finite_differences(variant):
    with_alpha, params = _split(variant)
    inputs = make((4, 3), np.float64, seed=7, class_alpha=with_alpha)
    check_finite_differences(LOSS, inputs, {"reduction": "sum", **params})
    check_finite_differences(LOSS, inputs, {"reduction": "mean", **params})


@pytest.mark.parametrize("dtype", DTYPES)
def test_gamma_zero_alpha_one_is_cross_entropy(dtype):
    inputs = make((9, 5), dtype, seed=3)
    # the reference in extended precision: lse - z_y formed in float64 loses ~1e-16 absolute,
    # which is ~1e-13 relative for a loss near 0.002 (the kernel keeps full relative accuracy)
    z = inputs["logits"].astype(np.longdouble)
    y = inputs["labels"]
    lse = np.log(np.sum(np.exp(z - z.max(1, keepdims=True)), 1)) + z.max(1)
    ce = (lse - z[np.arange(9), y]).astype(np.float64)
    lse = lse.astype(np.float64)
    z = z.astype(np.float64)
    res = lossd.evaluate(LOSS, inputs, {"gamma": 0.0, "alpha": 1.0, "reduction": "none"})
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(res.loss, ce, rtol=tol)
    soft = np.exp(z - lse[:, None])
    soft[np.arange(9), y] -= 1
    np.testing.assert_allclose(res.grads["logits"], soft, rtol=tol * 10, atol=tol)
    # the same through softmax_cross_entropy (framework loss)
    ce_res = lossd.evaluate("softmax_cross_entropy", {"input": inputs["logits"], "target": y})
    focal = lossd.evaluate(LOSS, inputs, {"gamma": 0.0})
    np.testing.assert_allclose(focal.loss, ce_res.loss, rtol=tol)
    np.testing.assert_allclose(focal.grads["logits"], ce_res.grads["input"], rtol=tol * 10, atol=tol)


def test_known_values():
    # two classes with equal logits: p_y = 1/2
    z = np.array([[0.0, 0.0], [math.log(3.0), 0.0]])
    y = np.array([0, 0])
    res = lossd.evaluate(LOSS, {"logits": z, "labels": y}, {"reduction": "none", "alpha": 0.5, "gamma": 2.0})
    np.testing.assert_allclose(res.loss, [0.5 * 0.25 * math.log(2), 0.5 * (0.25 ** 2) * math.log(4 / 3)],
                               rtol=1e-14)
    # class_alpha replaces alpha
    res2 = lossd.evaluate(LOSS, {"logits": z, "labels": y, "class_alpha": np.array([0.5, 9.0])},
                          {"reduction": "none", "alpha": 7.0})
    np.testing.assert_array_equal(res.loss, res2.loss)
    np.testing.assert_array_equal(res.grads["logits"], res2.grads["logits"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_confident_rows_are_finite(dtype):
    # p_y rounds to 1 (u = 0) and p_y underflows
    z = np.array([[60.0, -60.0, 0.0], [-60.0, 60.0, 0.0]], dtype)
    res = lossd.evaluate(LOSS, {"logits": z, "labels": np.array([0, 0])}, {"gamma": 0.5, "reduction": "none"})
    assert np.all(np.isfinite(res.loss)) and np.all(np.isfinite(res.grads["logits"]))
    assert res.loss[0] < 1e-20 and res.loss[1] > 100
    check_against_reference(LOSS, {"logits": z, "labels": np.array([0, 0])}, {"gamma": 0.5}, reference)


def test_layout_choice():
    assert focal._COLS_MAX_CLASSES == 40 and 3000 > 2 * focal.cols.P


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (600, 7), (9, 40)], ids=str)
def test_rows_and_columns_agree(dtype, shape):
    """The two layouts of the kernel give the same losses and gradients, confident rows
    (u = 0, p_y underflowing) included."""
    rng = np.random.default_rng(sum(shape))
    n, c = shape
    z = rng.normal(0.0, 3.0, shape)
    z[::3] *= 30.0
    z = z.astype(dtype).reshape(n, c, 1)
    y = rng.integers(0, c, n)
    for gamma, class_alpha in ((0.0, None), (0.5, rng.uniform(0.0, 2.0, c).astype(dtype)), (2.0, None)):
        per_class = class_alpha is not None
        alphas = class_alpha if per_class else np.empty(0, dtype)
        got = []
        for kern, gshape in ((focal._softmax_focal, (n, c)), (focal._softmax_focal_cols, (n, c, 1))):
            out, grad = np.zeros(n, dtype), np.full(gshape, np.nan, dtype)
            total = kern.call(z.size, z, y, alphas, per_class, 0.25, gamma, 0.3, out, grad, True)
            got.append((total, out, grad.reshape(n, c)))
        (t_rows, out_rows, g_rows), (t_cols, out_cols, g_cols) = got
        rtol = 1e-12 if dtype == np.float64 else 2e-6
        np.testing.assert_allclose(t_cols, t_rows, rtol=rtol)
        assert not np.isnan(g_cols).any()
        for a, b in ((out_cols, out_rows), (g_cols, g_rows)):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.abs(b).max()))


def test_result_dtype_through_server(client):
    for dtype in DTYPES:
        res = client.evaluate(LOSS, make((5, 3), dtype, class_alpha=True))
        assert res.loss.dtype == dtype and res.grads["logits"].dtype == dtype
        assert set(res.grads) == {"logits"}


REJECTIONS = {
    "label_high": ({"labels": np.array([0, 3, 1, 2])}, {}, "inputs.labels"),
    "label_negative": ({"labels": np.array([0, -1, 1, 2])}, {}, "inputs.labels"),
    "label_float": ({"labels": np.array([0.0, 1.0, 1.0, 2.0])}, {}, "inputs.labels"),
    "label_shape": ({"labels": np.array([[0, 1, 1, 2]])}, {}, "inputs.labels"),
    "logits_rank3": ({"logits": np.zeros((4, 3, 2))}, {}, "inputs.logits"),
    "logits_rank1": ({"logits": np.zeros(4)}, {}, "inputs.logits"),
    "class_alpha_shape": ({"class_alpha": np.ones(4)}, {}, "inputs.class_alpha"),
    "class_alpha_negative": ({"class_alpha": np.array([1.0, -0.5, 1.0])}, {}, "inputs.class_alpha"),
    "class_alpha_mixed": ({"class_alpha": np.ones(3, np.float32)}, {}, "inputs.class_alpha"),
    "class_alpha_inf": ({"class_alpha": np.array([1.0, np.inf, 1.0])}, {}, "inputs.class_alpha"),
    "alpha_negative": ({}, {"alpha": -1.0}, "params.alpha"),
    "gamma_negative": ({}, {"gamma": -0.5}, "params.gamma"),
    "reduction": ({}, {"reduction": "weighted"}, "params.reduction"),
    "ignore_index": ({}, {"ignore_index": -100}, "params.ignore_index"),
}


test_rejections = case_rejections_test(LOSS, REJECTIONS, make((4, 3), np.float64))


def test_class_alpha_not_differentiable(client):
    with pytest.raises(lossd_client.InvalidArgument) as exc:
        client.evaluate(LOSS, make((4, 3), np.float64, class_alpha=True), {}, grads=["class_alpha"])
    assert "grads" in [v.field for v in exc.value.field_violations]
    res = client.evaluate(LOSS, make((4, 3), np.float64, class_alpha=True), {})
    assert set(res.grads) == {"logits"}


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_matches_torch(gamma):
    # gamma = 0, alpha = 1: F.cross_entropy; gamma = 2: kornia's formula without its eps, in torch
    torch = pytest.importorskip("torch")
    inputs = make((9, 4), np.float64, seed=17)
    z = torch.tensor(inputs["logits"], requires_grad=True)
    y = torch.tensor(inputs["labels"])
    log_p = torch.log_softmax(z, dim=1).gather(1, y[:, None])[:, 0]
    loss = (-((1 - log_p.exp()) ** gamma) * log_p).mean()
    if gamma == 0.0:
        np.testing.assert_allclose(loss.detach().numpy(),
                                   torch.nn.functional.cross_entropy(z, y).detach().numpy(), rtol=1e-14)
    loss.backward()
    res = lossd.evaluate(LOSS, inputs, {"gamma": gamma})
    np.testing.assert_allclose(res.loss, loss.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(res.grads["logits"], z.grad.numpy(), rtol=1e-9, atol=1e-13)
