"""tv (core.md §6) against the float64 reference, finite differences, known tiny images,
H = 1 / W = 1, and rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import assert_rejected
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.tv import reference

LOSS = "tv"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1, 3, 4), (3, 2, 5, 7), (4, 3, 20, 20)]     # the last has 4800 elements: parallel build
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
VARIANTS = [("l1", None), ("squared", None), ("isotropic", None), ("isotropic", 2.0), ("isotropic", 0.7),
            ("l1", 3.0)]


def _params(reduction, variant, beta):
    return {"reduction": reduction, "variant": variant, **({} if beta is None else {"beta": beta})}


def _image(shape, dtype, seed=0):
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(dtype)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v[0]}-beta{v[1]}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, variant):
    inputs = {"input": _image(shape, dtype, seed=sum(shape))}
    check_against_reference(LOSS, inputs, _params(reduction, *variant), reference)


@pytest.mark.parametrize("variant", VARIANTS[:5], ids=lambda v: f"{v[0]}-beta{v[1]}")
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_finite_differences(reduction, variant):
    # well-separated values: no zero difference within far more than h
    x = np.random.default_rng(2).permutation(24).reshape(2, 1, 3, 4) * 0.37 + 0.1
    check_finite_differences(LOSS, {"input": x}, _params(reduction, *variant))


@pytest.mark.parametrize("dtype", DTYPES)
def test_l1_on_a_known_tiny_image(dtype):
    x = np.array([[[[1.0, 2.0, 0.0], [4.0, 8.0, 8.0]]]], dtype)
    r = lossd.evaluate(LOSS, {"input": x}, {"reduction": "none"})
    # vertical |3| + |6| + |8|, horizontal |1| + |-2| + |4| + |0|
    np.testing.assert_array_equal(r.loss, np.array([24.0], dtype))
    # per pixel: +sign of the differences ending there, -sign of those starting there
    expected = [[[[-1 - 1, 1 + 1 - 1, -1 - 1], [1 - 1, 1 + 1 - 0, 1 + 0]]]]
    np.testing.assert_array_equal(r.grads["input"], np.array(expected, dtype))
    two = np.concatenate([x, 2 * x])
    r2 = lossd.evaluate(LOSS, {"input": two}, {"reduction": "mean"})
    np.testing.assert_array_equal(r2.loss, np.array((24.0 + 48.0) / 2, dtype))
    sq = lossd.evaluate(LOSS, {"input": x}, {"variant": "squared", "reduction": "sum"})
    np.testing.assert_array_equal(sq.loss, np.array(9 + 36 + 64 + 1 + 4 + 16 + 0, dtype))
    iso = lossd.evaluate(LOSS, {"input": x}, {"variant": "isotropic", "reduction": "sum"})
    assert_close(iso.loss, np.hypot(3, 1) + np.hypot(6, -2), dtype, what="isotropic")


def test_matches_tf_image_total_variation_formula():
    x = _image((2, 3, 4, 5), np.float64, seed=4)
    nhwc = x.transpose(0, 2, 3, 1)
    tf_like = (np.abs(np.diff(nhwc, axis=1)).sum(axis=(1, 2, 3))
               + np.abs(np.diff(nhwc, axis=2)).sum(axis=(1, 2, 3)))
    r = lossd.evaluate(LOSS, {"input": x}, {"reduction": "none"})
    np.testing.assert_allclose(r.loss, tf_like, rtol=1e-13)


@pytest.mark.parametrize("shape", [(2, 3, 1, 6), (2, 3, 5, 1), (1, 1, 1, 1)])
def test_single_row_or_column(shape):
    x = _image(shape, np.float64, seed=5)
    iso = lossd.evaluate(LOSS, {"input": x}, {"variant": "isotropic", "reduction": "none"})
    np.testing.assert_array_equal(iso.loss, np.zeros(shape[0]))       # isotropic with H = 1 (or W = 1) is 0
    np.testing.assert_array_equal(iso.grads["input"], np.zeros(shape))
    for variant in ("l1", "squared"):
        check_against_reference(LOSS, {"input": x}, {"variant": variant, "reduction": "none"}, reference)
    l1 = lossd.evaluate(LOSS, {"input": x}, {"reduction": "none"})
    np.testing.assert_allclose(l1.loss, np.abs(np.diff(x.reshape(shape[0], -1) if shape[1] == 1 else
                                                       x.reshape(shape[0], shape[1], -1), axis=-1))
                               .reshape(shape[0], -1).sum(axis=1), rtol=1e-13)


def test_isotropic_r_zero_and_constant_image():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 2, 2] = 1.0       # only the pair at (1, 1) has a zero difference, others differ
    for beta in (0.5, 1.0, 2.0):
        params = {"variant": "isotropic", "beta": beta, "reduction": "sum"}
        r = lossd.evaluate(LOSS, {"input": x}, params)
        assert np.all(np.isfinite(r.grads["input"]))
        check_against_reference(LOSS, {"input": x}, params, reference)
    flat = np.full((2, 3, 4, 4), 0.5)
    for variant in ("l1", "squared", "isotropic"):
        r = lossd.evaluate(LOSS, {"input": flat}, {"variant": variant, "beta": 0.3})
        assert r.loss == 0.0 and np.all(r.grads["input"] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_result_dtype_through_server(client, dtype):
    inputs = {"input": _image((2, 3, 4, 5), dtype, seed=2)}
    for reduction in REDUCTIONS:
        params = _params(reduction, "isotropic", 1.5)
        result = client.evaluate(LOSS, inputs, params)
        assert result.loss.dtype == dtype
        assert set(result.grads) == {"input"} and result.grads["input"].dtype == dtype
        ref, _ = reference({"input": inputs["input"].astype(np.float64)}, params)
        assert_close(result.loss, ref, np.dtype(dtype), what=reduction)


def test_rejections(client):
    x = _image((2, 3, 4, 5), np.float64, seed=1)
    assert_rejected(client, LOSS, {"input": x[0]}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x[None]}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x.reshape(2, -1)}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x}, {"beta": 0.0}, "params.beta")
    assert_rejected(client, LOSS, {"input": x}, {"beta": -1.0}, "params.beta")
    # beta is checked for every variant
    assert_rejected(client, LOSS, {"input": x}, {"variant": "l1", "beta": 0}, "params.beta")
    assert_rejected(client, LOSS, {"input": x}, {"beta": "2"}, "params.beta")
    assert_rejected(client, LOSS, {"input": x}, {"beta": True}, "params.beta")
    assert_rejected(client, LOSS, {"input": x}, {"variant": "anisotropic"}, "params.variant")
    assert_rejected(client, LOSS, {"input": x}, {"variant": "L1"}, "params.variant")
    assert_rejected(client, LOSS, {"input": x}, {"reduction": "pixelmean"}, "params.reduction")
    assert_rejected(client, LOSS, {"input": x.astype(np.int32)}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x[:, :, :0]}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": x, "target": x}, {}, "inputs.target")
    bad = x.copy()
    bad[1, 2, 3, 4] = np.nan
    assert_rejected(client, LOSS, {"input": bad}, {}, "inputs.input")
    client.evaluate(LOSS, {"input": x}, {"beta": 2})      # an integer is a real number
