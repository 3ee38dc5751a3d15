"""f_divergence (core.md §5.2): all seven divergences, logits and probs, against the float64
reference; finite differences; identities and bounds; rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._shared import assert_rejected
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.f_divergence import reference

LOSS = "f_divergence"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (4, 3, 2, 2), (64, 9, 8)]   # the last has 4608 elements: parallel build
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
DIVERGENCES = ["kl", "reverse_kl", "pearson_chi2", "neyman_chi2", "squared_hellinger",
               "jensen_shannon", "total_variation"]
ZERO_OK = {"kl", "pearson_chi2", "squared_hellinger", "jensen_shannon", "total_variation"}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _data(shape, dtype, seed, divergence, kind):
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, shape)
    a = rng.uniform(0.05, 1.0, shape)
    if divergence in ZERO_OK:
        a[rng.uniform(size=shape) < 0.2] = 0.0
    p = a / np.maximum(a.sum(axis=1, keepdims=True), 1e-12)
    x = z if kind == "logits" else _softmax(z)
    return {"input": x.astype(dtype), "target": p.astype(dtype)}


def _params(reduction, divergence, kind):
    return {"reduction": reduction, "divergence": divergence, "input_kind": kind}


@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(dtype, shape, reduction, divergence, kind):
    inputs = _data(shape, dtype, sum(shape) + DIVERGENCES.index(divergence), divergence, kind)
    check_against_reference(LOSS, inputs, _params(reduction, divergence, kind), reference)


def test_defaults_are_kl_with_logits():
    inputs = _data((3, 4), np.float64, 1, "kl", "logits")
    a = lossd.evaluate(LOSS, inputs)
    b = lossd.evaluate(LOSS, inputs, _params("mean", "kl", "logits"))
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.grads["input"], b.grads["input"])
    check_against_reference(LOSS, inputs, {}, reference)


@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_finite_differences(reduction, divergence, kind):
    inputs = _data((2, 4, 2), np.float64, 3, divergence, kind)
    if kind == "probs":   # keep q + h inside (0, 1]
        inputs["input"] = np.clip(inputs["input"], 1e-3, 0.99)
    check_finite_differences(LOSS, inputs, _params(reduction, divergence, kind))


@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 3)])
def test_kl_with_logits_equals_kl_div_of_log_softmax(shape):
    inputs = _data(shape, np.float64, 7, "kl", "logits")
    z, p = inputs["input"], inputs["target"]
    lq = z - z.max(axis=1, keepdims=True)
    lq = lq - np.log(np.exp(lq).sum(axis=1, keepdims=True))
    f = lossd.evaluate(LOSS, inputs, {"reduction": "none"})
    k = lossd.evaluate("kl_div", {"input": lq, "target": p}, {"reduction": "none"})
    np.testing.assert_allclose(f.loss, k.loss.sum(axis=1), rtol=1e-12, atol=1e-15)
    fb = lossd.evaluate(LOSS, inputs, {"reduction": "batchmean"})
    kb = lossd.evaluate("kl_div", {"input": lq, "target": p}, {"reduction": "batchmean"})
    np.testing.assert_allclose(fb.loss, kb.loss, rtol=1e-12)
    # gradient w.r.t. logits = s (q sum_j p_j - p) = q - p for normalised p (sum reduction)
    fs = lossd.evaluate(LOSS, inputs, {"reduction": "sum"})
    np.testing.assert_allclose(fs.grads["input"], _softmax(z) - p, atol=1e-14)


def _none(x, p, divergence, kind="logits", reduction="none"):
    return lossd.evaluate(LOSS, {"input": x, "target": p}, _params(reduction, divergence, kind))


@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_jensen_shannon_and_total_variation_bounds(kind):
    rng = np.random.default_rng(4)
    # random, often sharply peaked pairs
    z = rng.normal(0.0, 6.0, (200, 6))
    q = _softmax(z)
    p = _softmax(rng.normal(0.0, 6.0, (200, 6)))
    x = z if kind == "logits" else q
    js = _none(x, p, "jensen_shannon", kind)
    tv = _none(x, p, "total_variation", kind)
    assert np.all(js.loss >= -1e-15) and np.all(js.loss <= np.log(2.0) + 1e-12)
    assert np.all(tv.loss >= 0) and np.all(tv.loss <= 1.0 + 1e-12)
    assert js.loss.max() > 0.69 and tv.loss.max() > 0.99           # the bounds are nearly reached
    # disjoint supports reach the bounds: JS = log 2, TV = 1
    p2 = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    x2 = np.array([[-1e4, 0.0, 0.0], [0.0, -1e4, -1e4]]) if kind == "logits" else \
        np.array([[1e-300, 0.5, 0.5], [1.0, 1e-300, 1e-300]])
    js2 = _none(x2, p2, "jensen_shannon", kind)
    tv2 = _none(x2, p2, "total_variation", kind)
    np.testing.assert_allclose(js2.loss, [np.log(2.0)] * 2, rtol=1e-12)
    np.testing.assert_allclose(tv2.loss, [1.0, 1.0], rtol=1e-12)
    assert np.all(np.isfinite(js2.grads["input"])) and np.all(np.isfinite(tv2.grads["input"]))


def test_identical_distributions_give_zero():
    z = np.random.default_rng(5).normal(0.0, 1.0, (4, 5))
    p = _softmax(z)
    for divergence in DIVERGENCES:
        for kind, x in (("logits", z), ("probs", p)):
            r = lossd.evaluate(LOSS, {"input": x, "target": p}, _params("none", divergence, kind))
            np.testing.assert_allclose(r.loss, 0.0, atol=1e-14, err_msg=f"{divergence} {kind}")
            # logits: the softmax Jacobian removes the constant; probs: dt/dq at p = q
            slope = {"kl": -1.0, "reverse_kl": 1.0}.get(divergence, 0.0) if kind == "probs" else 0.0
            if divergence == "total_variation" and kind == "logits":
                continue      # q = p only up to rounding: sign(q - p) is the tie of README §7
            np.testing.assert_allclose(r.grads["input"], slope, atol=1e-13, err_msg=f"{divergence} {kind}")


def test_underflowed_q_with_logits():
    # q_0 = exp(-1e4) underflows to 0: kl, reverse_kl, hellinger, JS stay finite, pearson is +Inf
    z = np.array([[-1e4, 0.0, 0.0]])
    p = np.array([[0.2, 0.4, 0.4]])
    for divergence in ("kl", "reverse_kl", "squared_hellinger", "jensen_shannon", "total_variation",
                       "neyman_chi2"):
        r = _none(z, p, divergence, reduction="sum")
        assert np.isfinite(r.loss) and np.all(np.isfinite(r.grads["input"])), divergence
    kl = lossd.evaluate(LOSS, {"input": z, "target": p}, {"reduction": "sum"})
    expected = 0.2 * (np.log(0.2) + 1e4 + np.log(2.0)) + 0.8 * np.log(0.8)
    np.testing.assert_allclose(kl.loss, expected, rtol=1e-12)
    np.testing.assert_allclose(kl.grads["input"], [[-0.2, 0.1, 0.1]], atol=1e-15)
    pearson = _none(z, p, "pearson_chi2", reduction="sum")
    assert pearson.loss == np.inf
    # with p = 0 at the underflowed class the pearson term is its limit q = 0 (not 0 * Inf)
    p0 = np.array([[0.0, 0.5, 0.5]])
    r = _none(z, p0, "pearson_chi2", reduction="sum")
    np.testing.assert_allclose(r.loss, 0.0, atol=1e-15)
    assert np.all(np.isfinite(r.grads["input"]))


def test_known_values_probs():
    q = np.array([[0.25, 0.75]])
    p = np.array([[0.5, 0.5]])
    expected = {
        "kl": 0.5 * np.log(2.0) + 0.5 * np.log(2.0 / 3.0),
        "reverse_kl": 0.25 * np.log(0.5) + 0.75 * np.log(1.5),
        "pearson_chi2": 0.25 ** 2 / 0.25 + 0.25 ** 2 / 0.75,
        "neyman_chi2": 0.25 ** 2 / 0.5 * 2,
        "squared_hellinger": (np.sqrt(0.5) - 0.5) ** 2 + (np.sqrt(0.5) - np.sqrt(0.75)) ** 2,
        "jensen_shannon": 0.5 * (0.5 * np.log(0.5 / 0.375) + 0.25 * np.log(0.25 / 0.375)
                                 + 0.5 * np.log(0.5 / 0.625) + 0.75 * np.log(0.75 / 0.625)),
        "total_variation": 0.25,
    }
    for divergence, value in expected.items():
        r = lossd.evaluate(LOSS, {"input": q, "target": p}, _params("sum", divergence, "probs"))
        np.testing.assert_allclose(r.loss, value, rtol=1e-12, err_msg=divergence)
    tv = lossd.evaluate(LOSS, {"input": q, "target": p}, _params("sum", "total_variation", "probs"))
    np.testing.assert_array_equal(tv.grads["input"], [[-0.5, 0.5]])
    tie = lossd.evaluate(LOSS, {"input": p, "target": p}, _params("sum", "total_variation", "probs"))
    np.testing.assert_array_equal(tie.grads["input"], [[0.0, 0.0]])     # sign(0) = 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_result_dtype_through_server(client, dtype):
    for kind in ("logits", "probs"):
        inputs = _data((3, 4), dtype, 2, "jensen_shannon", kind)
        for reduction in REDUCTIONS:
            params = _params(reduction, "jensen_shannon", kind)
            result = client.evaluate(LOSS, inputs, params)
            assert result.loss.dtype == dtype
            assert set(result.grads) == {"input"} and result.grads["input"].dtype == dtype
            ref, _ = reference({k: v.astype(np.float64) for k, v in inputs.items()}, params)
            assert_close(result.loss, ref, np.dtype(dtype), what=reduction)


def test_rejections(client):
    good = _data((2, 3, 2), np.float64, 5, "kl", "probs")
    q, p = good["input"], good["target"]
    p0 = p.copy()
    p0[1, 0, 1], p0[1, 1, 1] = 0.0, p0[1, 1, 1] + p0[1, 0, 1]
    for divergence in ("reverse_kl", "neyman_chi2"):
        for kind in ("logits", "probs"):
            assert_rejected(client, LOSS, {"input": q, "target": p0},
                            {"divergence": divergence, "input_kind": kind}, "inputs.target")
    for divergence in ZERO_OK:        # p = 0 is fine for the others
        client.evaluate(LOSS, {"input": q, "target": p0}, {"divergence": divergence, "input_kind": "probs"})
    assert_rejected(client, LOSS, {"input": q, "target": p + 1.0}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q, "target": -p}, {}, "inputs.target")
    q0 = q.copy()
    q0[0, 0, 0] = 0.0
    assert_rejected(client, LOSS, {"input": q0, "target": p}, {"input_kind": "probs"}, "inputs.input")
    assert_rejected(client, LOSS, {"input": q + 1.0, "target": p}, {"input_kind": "probs"}, "inputs.input")
    assert_rejected(client, LOSS, {"input": -q, "target": p}, {"input_kind": "probs"}, "inputs.input")
    client.evaluate(LOSS, {"input": q0 - 5.0, "target": p}, {"input_kind": "logits"})   # logits: any value
    client.evaluate(LOSS, {"input": np.ones_like(q), "target": p}, {"input_kind": "probs"})   # q = 1 allowed
    assert_rejected(client, LOSS, {"input": q, "target": p}, {"divergence": "js"}, "params.divergence")
    assert_rejected(client, LOSS, {"input": q, "target": p}, {"divergence": "KL"}, "params.divergence")
    assert_rejected(client, LOSS, {"input": q, "target": p}, {"input_kind": "log_probs"}, "params.input_kind")
    assert_rejected(client, LOSS, {"input": q, "target": p}, {"input_kind": 1}, "params.input_kind")
    assert_rejected(client, LOSS, {"input": q[:, 0, 0], "target": p[:, 0, 0]}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": q, "target": p[:, :, :1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q, "target": np.zeros((2, 3, 2), np.int64)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": q, "target": p}, {}, "grads", grads=["target"])
    assert_rejected(client, LOSS, {"input": q, "target": p}, {"reduction": "mean_"}, "params.reduction")
