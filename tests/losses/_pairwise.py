"""Test functions the input/target losses (mse, l1, l2_loss, euclidean, l2_distance, huber,
smooth_l1) run the same way, built per loss: each factory returns a test function that the
test module binds to a ``test_*`` name. ``data(shape, dtype, seed)`` makes a loss's inputs;
``param``/``values`` add one parameter (e.g. huber's ``delta``) to the parametrization, a
value of None meaning "not given"."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import DTYPES, REDUCTIONS, SHAPES, assert_rejected, generic_rejections, normal
from tests.losses.harness import check_against_reference, check_finite_differences


def pair_data(shape, dtype, seed, scale=1.0):
    """Independent normal input (times ``scale``) and target."""
    return {"input": normal(shape, dtype, seed, scale), "target": normal(shape, dtype, seed + 1)}


def spread_pair():
    """float64 (3, 4) input/target whose differences d spread over both sides of the switch
    points of huber and smooth_l1 (|d| from 0.05 to 2.1), none on one."""
    y = normal((3, 4), np.float64, 3)
    d = np.array([-2.1, -0.8, -0.3, -0.05, 0.07, 0.2, 0.45, 0.7, 0.93, 1.3, 1.8, -1.2]).reshape(3, 4)
    return {"input": y + d, "target": y}


def _params(reduction, param, value):
    return {"reduction": reduction} if value is None else {"reduction": reduction, param: value}


def against_reference_test(loss, data, reference, param=None, values=(None,), per_sample=False):
    """Every dtype, shape of _shared.SHAPES and reduction; ``per_sample``: reduction none gives
    one loss per sample (shape (N,))."""

    def check(dtype, shape, reduction, value=None):
        inputs = data(shape, dtype, len(shape) + shape[0])
        result = check_against_reference(loss, inputs, _params(reduction, param, value), reference)
        if per_sample and reduction == "none":
            assert result.loss.shape == (shape[0],)

    if param:
        @pytest.mark.parametrize("value", values)
        @pytest.mark.parametrize("reduction", REDUCTIONS)
        @pytest.mark.parametrize("shape", SHAPES)
        @pytest.mark.parametrize("dtype", DTYPES)
        def test_against_reference(dtype, shape, reduction, value):
            check(dtype, shape, reduction, value)
    else:
        @pytest.mark.parametrize("reduction", REDUCTIONS)
        @pytest.mark.parametrize("shape", SHAPES)
        @pytest.mark.parametrize("dtype", DTYPES)
        def test_against_reference(dtype, shape, reduction):
            check(dtype, shape, reduction)

    return test_against_reference


def grads_subsets_test(loss, data, reference, reduction="sum"):
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_grads_subsets(dtype):
        inputs = data((4, 3), dtype, 5)
        for grads in (["input"], ["target"], []):
            check_against_reference(loss, inputs, {"reduction": reduction}, reference, grads=grads)

    return test_grads_subsets


def finite_differences_test(loss, inputs, param=None, values=(None,)):
    """Central differences on the float64 ``inputs`` for every reduction (and value)."""
    if param:
        @pytest.mark.parametrize("value", values)
        @pytest.mark.parametrize("reduction", REDUCTIONS)
        def test_finite_differences(reduction, value):
            check_finite_differences(loss, inputs, _params(reduction, param, value))
    else:
        @pytest.mark.parametrize("reduction", REDUCTIONS)
        def test_finite_differences(reduction):
            check_finite_differences(loss, inputs, {"reduction": reduction})

    return test_finite_differences


def zero_error_test(loss):
    def test_zero_error():
        x = normal((4, 3), np.float64, 9)
        r = lossd.evaluate(loss, {"input": x, "target": x.copy()})
        assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()

    return test_zero_error


def rejections_test(loss, data):
    """The generic README §6 rejections through the live server."""

    @pytest.mark.parametrize("inputs, params, grads, field",
                             generic_rejections(data((3, 2), np.float64, 0), ["input", "target"]))
    def test_rejections(client, inputs, params, grads, field):
        assert_rejected(client, loss, inputs, params, field, grads)

    return test_rejections


def shape_mismatch_test(loss, data):
    """A target with fewer columns than the input is rejected."""

    def test_rejects_shape_mismatch(client):
        inputs = data((3, 2), np.float64, 0)
        assert_rejected(client, loss, {**inputs, "target": inputs["target"][:, :1]}, {}, "inputs.target")

    return test_rejects_shape_mismatch
