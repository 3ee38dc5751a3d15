"""huber (core.md §2.4) against the float64 reference for several delta, finite
differences, the switch points, huber = delta * smooth_l1(beta = delta), and rejections
through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._pairwise import (
    against_reference_test,
    finite_differences_test,
    grads_subsets_test,
    pair_data,
    rejections_test,
    shape_mismatch_test,
    spread_pair,
    zero_error_test,
)
from tests.losses._shared import DTYPES, assert_alias_and_dtypes, assert_rejected
from tests.losses.harness import assert_close
from tests.reference.huber import reference

LOSS = "huber"
DELTAS = [None, 0.25, 3.0]


def _data(shape, dtype, seed):
    return pair_data(shape, dtype, seed, 1.5)


test_against_reference = against_reference_test(LOSS, _data, reference, "delta", DELTAS)


test_grads_subsets = grads_subsets_test(LOSS, _data, reference)


test_finite_differences = finite_differences_test(LOSS, spread_pair(), "delta", [0.5, 1.0])


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


test_zero_error = zero_error_test(LOSS)


test_rejections = rejections_test(LOSS, _data)


@pytest.mark.parametrize("delta", [0.0, -1.0, "2", False])
def test_rejects_bad_delta(client, delta):
    assert_rejected(client, LOSS, _data((3, 2), np.float64, 0), {"delta": delta}, "params.delta")


test_rejects_shape_mismatch = shape_mismatch_test(LOSS, _data)


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "huber_loss", _data((3, 2), np.float64, 0))
