"""Tests of triplet_margin (metric.md §5a)."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
import lossd_client
from tests.losses._shared import case_rejections_test
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.triplet_margin import reference

LOSS = "triplet_margin"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (821, 5)]          # batch 1, odd, >= 4096 elements (parallel build)
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
VARIANTS = [{}, {"margin": 0.5, "eps": 0.0}, {"p": 1.0}, {"p": 3.0, "eps": 1e-3}, {"p": 1.5},
            {"swap": True}, {"swap": True, "p": 3.0, "margin": 0.3},
            {"squared": True, "margin": 0.2}, {"squared": True, "swap": True, "eps": 0.5}]


def make(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {name: (rng.standard_normal(shape) * 0.6).astype(dtype)
            for name in ("anchor", "positive", "negative")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v) or "default")
def test_against_reference(dtype, shape, reduction, variant):
    params = {"reduction": reduction, **variant}
    inputs = make(shape, dtype, seed=shape[0])
    check_against_reference(LOSS, inputs, params, reference)


def test_both_branches_present():
    inputs = make((821, 5), np.float64, seed=821)
    loss, _ = reference(inputs, {"reduction": "none"})
    assert np.any(loss == 0) and np.any(loss > 0)
    loss, _ = reference(inputs, {"reduction": "none", "swap": True})
    d_an = np.linalg.norm(inputs["anchor"] - inputs["negative"] + 1e-6, axis=1)
    d_pn = np.linalg.norm(inputs["positive"] - inputs["negative"] + 1e-6, axis=1)
    assert np.any(d_pn < d_an) and np.any(d_pn > d_an)


@pytest.mark.parametrize("variant", [{}, {"p": 1.0}, {"p": 3.0}, {"swap": True}, {"squared": True},
                                     {"swap": True, "p": 1.5, "reduction": "none"}])
@pytest.mark.parametrize("reduction", ["sum", "batchmean"])
def test_finite_differences(variant, reduction):
    inputs = make((5, 3), np.float64, seed=11)
    params = {"reduction": reduction, "margin": 0.7, **variant}
    lo, _ = reference(inputs, {**params, "reduction": "none", "margin": 0.7 - 1e-3})
    hi, _ = reference(inputs, {**params, "reduction": "none", "margin": 0.7 + 1e-3})
    np.testing.assert_array_equal(lo > 0, hi > 0)      # no hinge within 1e-3
    if params.get("swap"):                              # no tie between d_an and d_pn
        p = params.get("p", 2.0)
        d_an = np.sum(np.abs(inputs["anchor"] - inputs["negative"] + 1e-6) ** p, axis=1) ** (1 / p)
        d_pn = np.sum(np.abs(inputs["positive"] - inputs["negative"] + 1e-6) ** p, axis=1) ** (1 / p)
        assert np.all(np.abs(d_an - d_pn) > 1e-3)
    check_finite_differences(LOSS, inputs, params)


def test_alias_and_torch_formula():
    inputs = make((4, 3), np.float64, seed=2)
    a = lossd.evaluate("triplet_margin_loss", inputs, {"swap": True})
    b = lossd.evaluate(LOSS, inputs, {"swap": True})
    assert a.loss_id == LOSS and a.loss == b.loss


def test_known_distances_and_swap():
    # d_ap = 1, d_an = 1.5, d_pn = 0.5: swap picks d_pn
    x = {"anchor": np.array([[0.0, 0.0]]), "positive": np.array([[1.0, 0.0]]),
         "negative": np.array([[1.5, 0.0]])}
    plain = lossd.evaluate(LOSS, x, {"eps": 0.0, "margin": 1.0})
    assert plain.loss == 0.5
    np.testing.assert_array_equal(plain.grads["anchor"], [[-1.0 + 1.0, 0.0]])
    swapped = lossd.evaluate(LOSS, x, {"eps": 0.0, "margin": 1.0, "swap": True})
    assert swapped.loss == 1.5
    np.testing.assert_array_equal(swapped.grads["anchor"], [[-1.0, 0.0]])
    np.testing.assert_array_equal(swapped.grads["positive"], [[2.0, 0.0]])
    np.testing.assert_array_equal(swapped.grads["negative"], [[-1.0, 0.0]])
    # 3-4-5 with p = 1, 2 and squared
    y = {"anchor": np.array([[0.0, 0.0]]), "positive": np.array([[3.0, 4.0]]),
         "negative": np.array([[0.0, 10.0]])}
    assert lossd.evaluate(LOSS, y, {"eps": 0.0, "margin": 6.0}).loss == 1.0
    assert lossd.evaluate(LOSS, y, {"eps": 0.0, "margin": 4.0, "p": 1.0}).loss == 1.0
    assert lossd.evaluate(LOSS, y, {"margin": 80.0, "squared": True}).loss == 5.0


def test_margin_makes_loss_zero_and_hinge_at_zero():
    x = {"anchor": np.array([[0.0, 0.0], [0.0, 0.0]], np.float32),
         "positive": np.array([[1.0, 0.0], [1.0, 0.0]], np.float32),
         "negative": np.array([[0.0, 3.5], [0.0, 3.0]], np.float32)}
    res = lossd.evaluate(LOSS, x, {"eps": 0.0, "margin": 2.0, "reduction": "none"})
    assert res.loss.dtype == np.float32
    np.testing.assert_array_equal(res.loss, [0.0, 0.0])
    np.testing.assert_array_equal(res.grads["anchor"][0], [0.0, 0.0])   # inactive
    np.testing.assert_array_equal(res.grads["anchor"][1], [-1.0, 1.0])  # z = 0: slope 1
    np.testing.assert_array_equal(res.grads["negative"][1], [0.0, -1.0])


def test_zero_difference_gradient_is_zero():
    x = {"anchor": np.array([[1.0, 2.0]]), "positive": np.array([[1.0, 2.0]]),
         "negative": np.array([[1.0, 2.5]])}
    for p in (1.0, 2.0, 3.0):
        res = lossd.evaluate(LOSS, x, {"eps": 0.0, "p": p})
        assert res.loss == 0.5
        np.testing.assert_array_equal(res.grads["positive"], [[0.0, 0.0]])


def test_large_values_general_p_do_not_overflow():
    x = {"anchor": np.array([[1e6, 0.0]], np.float32), "positive": np.array([[0.0, 0.0]], np.float32),
         "negative": np.array([[0.0, 3e6]], np.float32)}
    res = lossd.evaluate(LOSS, x, {"p": 20.0})
    check_against_reference(LOSS, x, {"p": 20.0}, reference)
    assert np.isfinite(res.loss)


def test_result_dtype_through_server(client):
    for dtype in DTYPES:
        res = client.evaluate("triplet_margin_loss", make((5, 3), dtype))
        assert res.loss.dtype == dtype and all(g.dtype == dtype for g in res.grads.values())
        assert set(res.grads) == {"anchor", "positive", "negative"}


REJECTIONS = {
    "margin_zero": ({}, {"margin": 0.0}, "params.margin"),
    "margin_negative": ({}, {"margin": -0.1}, "params.margin"),
    "p_below_one": ({}, {"p": 0.5}, "params.p"),
    "p_string": ({}, {"p": "2"}, "params.p"),
    "eps_negative": ({}, {"eps": -1e-6}, "params.eps"),
    "eps_negative_squared": ({}, {"eps": -1.0, "squared": True}, "params.eps"),
    "squared_p3": ({}, {"squared": True, "p": 3.0}, "params.squared"),
    "swap_int": ({}, {"swap": 1}, "params.swap"),
    "positive_shape": ({"positive": np.ones((4, 2))}, {}, "inputs.positive"),
    "negative_rows": ({"negative": np.ones((3, 3))}, {}, "inputs.negative"),
    "anchor_rank1": ({"anchor": np.ones(4)}, {}, "inputs.anchor"),
    "anchor_rank3": ({"anchor": np.ones((4, 3, 1)), "positive": np.ones((4, 3, 1)),
                      "negative": np.ones((4, 3, 1))}, {}, "inputs.anchor"),
    "empty": ({"anchor": np.ones((0, 3)), "positive": np.ones((0, 3)), "negative": np.ones((0, 3))}, {},
              "inputs.anchor"),
    "nan": ({"negative": np.full((4, 3), np.nan)}, {}, "inputs.negative"),
    "mixed": ({"positive": np.ones((4, 3), np.float32)}, {}, "inputs.positive"),
    "int_input": ({"negative": np.ones((4, 3), np.int32)}, {}, "inputs.negative"),
    "reduction": ({}, {"reduction": "elementwise_mean"}, "params.reduction"),
    "unknown_param": ({}, {"norm": 2.0}, "params.norm"),
}


test_rejections = case_rejections_test(LOSS, REJECTIONS, make((4, 3), np.float64))


def test_grads_list_rejections(client):
    for grads in (["anchor", "anchor"], ["label"]):
        with pytest.raises(lossd_client.InvalidArgument) as exc:
            client.evaluate(LOSS, make((4, 3), np.float64), {}, grads=grads)
        assert "grads" in [v.field for v in exc.value.field_violations]
    res = client.evaluate(LOSS, make((4, 3), np.float64), {}, grads=["negative"])
    assert set(res.grads) == {"negative"}


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torch(p, swap, reduction):
    torch = pytest.importorskip("torch")
    inputs = make((13, 6), np.float64, seed=21)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    torch_reduction = "sum" if reduction == "batchmean" else reduction
    out = torch.nn.functional.triplet_margin_loss(tensors["anchor"], tensors["positive"], tensors["negative"],
                                                  margin=0.8, p=p, eps=1e-6, swap=swap,
                                                  reduction=torch_reduction)
    if reduction == "batchmean":
        out = out / 13
    out.sum().backward()
    res = lossd.evaluate(LOSS, inputs, {"margin": 0.8, "p": p, "swap": swap, "reduction": reduction})
    np.testing.assert_allclose(res.loss, out.detach().numpy(), rtol=1e-10, atol=1e-14)
    for name, t in tensors.items():
        np.testing.assert_allclose(res.grads[name], t.grad.numpy(), rtol=1e-10, atol=1e-14)
