"""Range checks of validation (``checks.values_in`` on the one-pass kernel of
kernels/finite.py): the same verdicts and messages as NumPy's scan of the data, at the
interval ends, for signed zeros, open intervals, both float types, and strided inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lossd.core import checks
from lossd.core.validation import prepare
from lossd_client.errors import InvalidArgument

DTYPES = [np.float32, np.float64]


def bce(x, y):
    return prepare("binary_cross_entropy", {"input": x, "target": y})


@pytest.mark.parametrize("dtype", DTYPES)
def test_closed_interval_ends_and_signed_zero_accepted(dtype):
    x = np.array([-0.0, 0.0, 1.0, 0.5], dtype)
    assert bce(x, x.copy()).spec.id == "binary_cross_entropy"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [-np.finfo(np.float32).smallest_subnormal, 1.0000001, 7.0, -3.0])
def test_first_value_out_of_range_named(dtype, bad):
    x = np.full(1000, 0.5, dtype)
    x[123] = bad
    x[456] = bad
    if dtype(bad) in (0.0, 1.0):  # rounded into the interval: valid
        bce(x, np.full(1000, 0.5, dtype))
        return
    with pytest.raises(InvalidArgument) as err:
        bce(x, np.full(1000, 0.5, dtype))
    assert "inputs.input" in str(err.value) and "at index (123,)" in str(err.value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_open_interval_end_rejected(dtype):
    p = np.full((2, 3), 1 / 3, dtype)
    q = p.copy()
    q[1, 2] = 0.0  # input_kind = probs: Q in (0, 1]
    with pytest.raises(InvalidArgument, match=r"at index \(1, 2\)"):
        prepare("f_divergence", {"input": q, "target": p}, {"input_kind": "probs"})
    prepare("f_divergence", {"input": p, "target": p}, {"input_kind": "probs"})


@pytest.mark.parametrize("dtype", DTYPES)
def test_unbounded_interval(dtype):
    p = np.array([[0.0, 2.0, np.finfo(dtype).max]], dtype)
    prepare("kl_div", {"input": p, "target": p})
    p[0, 1] = -np.finfo(dtype).tiny
    with pytest.raises(InvalidArgument, match=r"inputs\.target.*at index \(0, 1\)"):
        prepare("kl_div", {"input": p, "target": p})


def test_strided_input_still_checked():
    call = bce(np.array([0.5, 0.5], np.float32), np.array([0.5, 0.5], np.float32))
    x = np.array([0.5, 0.0, 0.5, 2.0], np.float32)[::2]  # a view the kernel path leaves to NumPy
    ok = dataclasses.replace(call, inputs={**call.inputs, "input": x})
    checks.values_in(ok, "input", 0.0, 1.0)
    bad = dataclasses.replace(call, inputs={**call.inputs, "input": x[::-1] * 4})
    with pytest.raises(InvalidArgument, match=r"at index \(0,\)"):
        checks.values_in(bad, "input", 0.0, 1.0)
