"""huber (core.md §2.4) against the float64 reference for several delta, finite
differences, the switch points, huber = delta * smooth_l1(beta = delta), and rejections
through the live server."""

from __future__ import annotations

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
from tests.reference.huber import reference

LOSS = "huber"
DELTAS = [None, 0.25, 3.0]


def _data(shape, dtype, seed):
    return {"input": normal(shape, dtype, seed, 1.5), "target": normal(shape, dtype, seed + 1)}


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, delta):
    params = {"reduction": reduction} if delta is None else {"reduction": reduction, "delta": delta}
    check_against_reference(LOSS, _data(shape, dtype, len(shape) + shape[0]), params, reference)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_subsets(dtype):
    for grads in (["input"], ["target"], []):
        check_against_reference(LOSS, _data((4, 3), dtype, 5), {"reduction": "sum"}, reference, grads=grads)


@pytest.mark.parametrize("delta", [0.5, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction, delta):
    y = normal((3, 4), np.float64, 3)
    d = np.array([-2.1, -0.8, -0.3, -0.05, 0.07, 0.2, 0.45, 0.7, 0.93, 1.3, 1.8, -1.2]).reshape(3, 4)
    check_finite_differences(LOSS, {"input": y + d, "target": y}, {"reduction": reduction, "delta": delta})


@pytest.mark.parametrize("dtype", DTYPES)
def test_switch_points(dtype):
    # delta = 2: d = +-2 joins 0.5 d^2 = 2 and delta (|d| - delta / 2) = 2; slope +-delta
    x = np.array([[-2.0, 2.0, 1.0, 3.0, 0.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"reduction": "none", "delta": 2.0})
    assert_close(r.loss, [[2.0, 2.0, 0.5, 4.0, 0.0]], dtype, what="loss")
    assert_close(r.grads["input"], [[-2.0, 2.0, 1.0, 2.0, 0.0]], dtype, what="dx = clamp(d)")
    assert_close(r.grads["target"], [[2.0, -2.0, -1.0, -2.0, 0.0]], dtype, what="dy")


@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("dtype", DTYPES)
def test_is_delta_times_smooth_l1(dtype, delta):
    inputs = _data((9, 5), dtype, 6)
    h = lossd.evaluate(LOSS, inputs, {"reduction": "none", "delta": delta})
    s = lossd.evaluate("smooth_l1", inputs, {"reduction": "none", "beta": delta})
    expected = delta * s.loss.astype(np.float64)
    assert_close(h.loss, expected, dtype, what="loss")
    for name in ("input", "target"):
        assert_close(h.grads[name], delta * s.grads[name].astype(np.float64), dtype, what=name)


def test_zero_error():
    x = normal((4, 3), np.float64, 9)
    r = lossd.evaluate(LOSS, {"input": x, "target": x.copy()})
    assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()


@pytest.mark.parametrize("inputs, params, grads, field",
                         generic_rejections(_data((3, 2), np.float64, 0), ["input", "target"]))
def test_rejections(client, inputs, params, grads, field):
    assert_rejected(client, LOSS, inputs, params, field, grads)


@pytest.mark.parametrize("delta", [0.0, -1.0, "2", False])
def test_rejects_bad_delta(client, delta):
    assert_rejected(client, LOSS, _data((3, 2), np.float64, 0), {"delta": delta}, "params.delta")


def test_rejects_shape_mismatch(client):
    inputs = _data((3, 2), np.float64, 0)
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"][:, :1]}, {}, "inputs.target")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "huber_loss", _data((3, 2), np.float64, 0))
