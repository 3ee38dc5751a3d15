"""gaussian_nll (core.md §7.2) against the float64 reference for every var form (same
shape, one dimension of size 1, last dimension dropped, scalar parameter), finite
differences, the var < eps clamp gradient rule, and rejections through the live server."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossd
from tests.losses._shared import (
    DTYPES,
    REDUCTIONS,
    SHAPES,
    assert_alias_and_dtypes,
    assert_rejected,
    generic_rejections,
    normal,
)
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.gaussian_nll import reference

LOSS = "gaussian_nll"
FORMS = ["same", "lead1", "trail1", "drop", "param"]
PARAMS = [{}, {"full": True, "eps": 0.3}]


def _var_shape(shape, form):
    if form == "lead1":
        return (1,) + shape[1:]
    if form == "trail1":
        return shape[:-1] + (1,)
    if form == "drop":
        return shape[:-1]
    return shape


def _data(shape, dtype, seed, form="same"):
    rng = np.random.default_rng(seed)
    inputs = {"input": normal(shape, dtype, seed + 1), "target": normal(shape, dtype, seed + 2)}
    params = {}
    if form == "param":
        params["var"] = 0.75
    else:
        inputs["var"] = rng.uniform(0.2, 2.0, _var_shape(shape, form)).astype(dtype)
    return inputs, params


CASES = [(shape, form) for shape in SHAPES for form in FORMS
         if not (form == "drop" and len(shape) < 2) and not (form == "trail1" and len(shape) < 2)]


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape, form", CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, form, reduction, params):
    inputs, extra = _data(shape, dtype, len(shape) + shape[0], form)
    result = check_against_reference(LOSS, inputs, {**params, **extra, "reduction": reduction}, reference)
    assert ("var" in result.grads) == (form != "param")


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_subsets(dtype):
    inputs, _ = _data((4, 3), dtype, 5, "trail1")
    for grads in (["var"], ["input", "var"], ["target"], []):
        check_against_reference(LOSS, inputs, {"reduction": "sum"}, reference, grads=grads)


@pytest.mark.parametrize("form", ["same", "lead1", "drop", "param"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction, form):
    inputs, params = _data((3, 2, 2), np.float64, 3, form)
    check_finite_differences(LOSS, inputs, {**params, "full": True, "reduction": reduction})


@pytest.mark.parametrize("dtype", DTYPES)
def test_var_below_eps_gradient_passes_the_clamp(dtype):
    eps = 1e-6
    x = np.array([[0.0, 2e-3, 0.0, 1.0]], dtype)
    v = np.array([[0.0, 5e-7, 1e-6, 2.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x), "var": v}, {"reduction": "none"})
    d = x.astype(np.float64)
    vh = np.maximum(v.astype(np.float64), eps)
    assert_close(r.loss, 0.5 * (np.log(vh) + d * d / vh), dtype, what="loss at the clamped variance")
    # evaluated at v^ = eps where v < eps (PyTorch clamps under no_grad), not the 0 of the clamp
    expected = [[5e5, 0.5 * (1e6 - 4e-6 / 1e-12), 5e5, 0.125]]
    assert_close(r.grads["var"], expected, dtype, what="d/dvar")
    assert r.grads["var"][0, 0] != 0.0 and r.grads["var"][0, 1] != 0.0
    assert_close(r.grads["input"], d / vh, dtype, what="d/dinput")


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked_broadcast_and_scalar(dtype):
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], dtype)
    y = np.zeros_like(x)
    v = np.array([[2.0], [0.5]], dtype)  # broadcast along the last dimension
    r = lossd.evaluate(LOSS, {"input": x, "target": y, "var": v}, {"reduction": "sum", "full": True})
    value = 0.5 * (3 * math.log(2.0) + 14.0 / 2.0) + 0.5 * (3 * math.log(0.5) + 1.0 / 0.5) + 3 * math.log(
        2 * math.pi)
    assert_close(r.loss, value, dtype, what="sum")
    assert_close(r.grads["var"], [[0.5 * (3 / 2.0 - 14.0 / 4.0)], [0.5 * (3 / 0.5 - 1.0 / 0.25)]], dtype,
                 what="var gradient summed over the broadcast dimension")
    dropped = lossd.evaluate(LOSS, {"input": x, "target": y, "var": v[:, 0].copy()},
                             {"reduction": "sum", "full": True})
    assert_close(dropped.loss, value, dtype, what="var without the last dimension")
    assert dropped.grads["var"].shape == (2,)
    assert_close(dropped.grads["var"], r.grads["var"][:, 0].astype(np.float64), dtype, what="same gradient")
    tensor = lossd.evaluate(LOSS, {"input": x, "target": y, "var": np.full_like(x, 0.5)})
    scalar = lossd.evaluate(LOSS, {"input": x, "target": y}, {"var": 0.5})
    assert set(scalar.grads) == {"input", "target"}
    assert_close(scalar.loss, tensor.loss.astype(np.float64), dtype, what="scalar var == filled tensor")
    assert_close(scalar.grads["input"], tensor.grads["input"].astype(np.float64), dtype, what="d/dinput")
    integer = lossd.evaluate(LOSS, {"input": x, "target": y}, {"var": 2})
    assert_close(integer.loss, lossd.evaluate(LOSS, {"input": x, "target": y}, {"var": 2.0}).loss, dtype)


def test_zero_variance_scalar_uses_eps():
    x = np.array([[0.0, 1e-3]])
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"var": 0.0, "reduction": "none"})
    assert_close(r.loss, 0.5 * (math.log(1e-6) + np.array([[0.0, 1.0]])), np.float64)


VALID, _ = _data((3, 2), np.float64, 0, "same")


@pytest.mark.parametrize("inputs, params, grads, field",
                         generic_rejections(VALID, ["input", "target", "var"]))
def test_rejections(client, inputs, params, grads, field):
    assert_rejected(client, LOSS, inputs, params, field, grads)


@pytest.mark.parametrize("vshape", [(2,), (3, 2, 1), (1, 1), (3, 3), (2, 2), (6,)], ids=str)
def test_rejects_var_shapes(client, vshape):
    assert_rejected(client, LOSS, {**VALID, "var": np.ones(vshape)}, {}, "inputs.var")


def test_rejects_var_domain_and_count(client):
    bad = VALID["var"].copy()
    bad[2, 0] = -1e-9
    assert_rejected(client, LOSS, {**VALID, "var": bad}, {}, "inputs.var")
    no_var = {"input": VALID["input"], "target": VALID["target"]}
    assert_rejected(client, LOSS, no_var, {"var": -0.5}, "params.var")
    assert_rejected(client, LOSS, no_var, {"var": "1"}, "params.var")
    assert_rejected(client, LOSS, no_var, {}, "inputs.var")  # neither
    for field in ("inputs.var", "params.var"):  # both
        assert_rejected(client, LOSS, VALID, {"var": 1.0}, field)
    assert_rejected(client, LOSS, no_var, {"var": 1.0}, "grads", grads=["var"])
    assert_rejected(client, LOSS, {**VALID, "target": VALID["target"][:, :1]}, {}, "inputs.target")


@pytest.mark.parametrize("name, value", [("eps", 0.0), ("eps", -1.0), ("full", 1)])
def test_rejects_bad_params(client, name, value):
    assert_rejected(client, LOSS, VALID, {name: value}, f"params.{name}")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "gaussian_nll_loss", VALID)
