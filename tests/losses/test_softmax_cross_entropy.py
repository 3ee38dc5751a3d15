"""softmax_cross_entropy (core.md §4.1): index and probability targets, weight,
ignore_index, label smoothing, the W = 0 rule, K-dimensional inputs and extreme logits,
against the float64 reference; finite differences; rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from lossd.losses import softmax_cross_entropy as sce
from tests.losses._shared import assert_rejected
from tests.losses.harness import assert_close, check_against_reference, check_finite_differences
from tests.reference.softmax_cross_entropy import reference

LOSS = "softmax_cross_entropy"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (7, 5), (4, 3, 2, 2), (64, 10, 8)]   # the last has 5120 elements: parallel build
#: the kernels run by columns or by rows (softmax_cross_entropy.by_columns); these add
#: several chunks of either layout, rows with more classes, and several parallel blocks
LAYOUT_SHAPES = SHAPES + [(300, 7), (40, 50), (2, 4, 600), (2000, 9), (3, 6, 2000)]
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
# (weight?, ignore_index, label_smoothing)
INDEX_VARIANTS = [(False, None, None), (True, None, None), (False, -1, None), (False, 1, None),
                  (False, 11, None), (False, None, 0.1), (True, -7, 0.25), (True, None, 1.0)]
PROB_VARIANTS = [(False, None), (True, None), (False, 0.2), (True, 0.1)]


def _params(reduction, ignore=None, eps=None):
    out = {"reduction": reduction}
    if ignore is not None:
        out["ignore_index"] = ignore
    if eps is not None:
        out["label_smoothing"] = eps
    return out


def _index_data(shape, dtype, seed, weight=False, ignore=None):
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, shape)
    y = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    if ignore is not None and not 0 <= ignore < shape[1]:
        y[rng.uniform(size=y.shape) < 0.3] = ignore
    inputs = {"input": z.astype(dtype), "target": y}
    if weight:
        inputs["weight"] = rng.uniform(0.1, 2.0, shape[1]).astype(dtype)
    return inputs


def _prob_data(shape, dtype, seed, weight=False, zeros=True):
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, shape)
    a = rng.uniform(0.05, 1.0, shape)
    if zeros:
        a[rng.uniform(size=shape) < 0.2] = 0.0
    p = a / np.maximum(a.sum(axis=1, keepdims=True), 1e-12)
    inputs = {"input": z.astype(dtype), "target": p.astype(dtype)}
    if weight:
        inputs["weight"] = rng.uniform(0.1, 2.0, shape[1]).astype(dtype)
    return inputs


@pytest.mark.parametrize("variant", INDEX_VARIANTS, ids=lambda v: f"w={v[0]},ignore={v[1]},eps={v[2]}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", LAYOUT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_index_targets_against_reference(dtype, shape, reduction, variant):
    weight, ignore, eps = variant
    inputs = _index_data(shape, dtype, sum(shape), weight, ignore)
    check_against_reference(LOSS, inputs, _params(reduction, ignore, eps), reference)


@pytest.mark.parametrize("variant", PROB_VARIANTS, ids=lambda v: f"w={v[0]},eps={v[1]}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", LAYOUT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_probability_targets_against_reference(dtype, shape, reduction, variant):
    weight, eps = variant
    inputs = _prob_data(shape, dtype, sum(shape) + 1, weight)
    check_against_reference(LOSS, inputs, _params(reduction, None, eps), reference)


def test_int32_targets_and_grads_subsets():
    inputs = _index_data((5, 4), np.float64, 3, True, -100)
    inputs["target"] = inputs["target"].astype(np.int32)
    check_against_reference(LOSS, inputs, {"label_smoothing": 0.3}, reference)
    check_against_reference(LOSS, inputs, {}, reference, grads=[])
    probs = _prob_data((5, 4), np.float32, 4)
    check_against_reference(LOSS, probs, {"reduction": "sum"}, reference, grads=["target"])
    check_against_reference(LOSS, probs, {"reduction": "sum"}, reference, grads=["input"])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(reduction):
    idx = _index_data((3, 4, 2), np.float64, 1, True, -100)
    check_finite_differences(LOSS, idx, _params(reduction, -100, 0.2))
    prob = _prob_data((3, 4, 2), np.float64, 2, True, zeros=False)   # p +- h stays in [0, 1]
    check_finite_differences(LOSS, prob, _params(reduction, None, 0.2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits(dtype):
    z = np.array([[80.0, -80.0, 0.0], [1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4],
                  [-80.0, 80.0, 80.0]], dtype)
    y = np.array([0, 0, 0, 2, 0])
    r = lossd.evaluate(LOSS, {"input": z, "target": y}, {"reduction": "none"})
    assert np.all(np.isfinite(r.loss)) and np.all(np.isfinite(r.grads["input"]))
    expected = [np.exp(-80.0), 0.0, 2e4, 2e4 + np.log(2.0), 160.0 + np.log(2.0)]
    assert_close(r.loss, expected, dtype, what="loss")
    expected_grad = [[-np.exp(-80.0), np.exp(-160.0), np.exp(-80.0)], [0, 0, 0], [-1, 1, 0],
                     [0.5, 0.5, -1], [-1, 0.5, 0.5]]
    assert_close(r.grads["input"], expected_grad, dtype, what="grad")
    for reduction in REDUCTIONS:
        check_against_reference(LOSS, {"input": z, "target": y}, _params(reduction, None, 0.1), reference)
        p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5],
                      [1 / 3, 1 / 3, 1 / 3]], dtype)
        check_against_reference(LOSS, {"input": z, "target": p}, _params(reduction, None, 0.1), reference)


def test_layout_choice():
    """LAYOUT_SHAPES reach both layouts of both kernels, with several chunks."""
    assert sce.by_columns(7, 1) and sce.by_columns(9, 1) and sce.by_columns(4, 600)
    assert sce.by_columns(1000, 16) and sce.by_columns(40, 1)
    assert not sce.by_columns(50, 1) and not sce.by_columns(10, 8) and not sce.by_columns(3, 4)
    limit = sce._PROB_COLS_MAX_CLASSES
    assert sce.by_columns(9, 1, limit) and not sce.by_columns(50, 1, limit)
    assert 300 > sce.cols.P and 600 > 2 * sce.cols.P


def _both_layouts(kernels, n_grads, z, *args):
    """(loss sum, per-position losses, gradients) of a (rows, columns) pair of kernels;
    ``args``: their arguments between z and out; ``n_grads`` gradients, all wanted."""
    out = []
    for kern in kernels:
        per = np.zeros((z.shape[0], z.shape[2]), z.dtype)
        grads = [np.full(z.shape, np.nan, z.dtype) for _ in range(n_grads)]
        total = kern.call(z.size, z, *args, per, *grads, *[True] * n_grads)
        out.append((total, per, grads))
    return out


def _assert_layouts_agree(rows, cols, dtype):
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(cols[0], rows[0], rtol=rtol)
    for a, b in zip([cols[1], *cols[2]], [rows[1], *rows[2]]):
        assert not np.isnan(a).any()
        scale = np.abs(b.astype(np.float64)).max()
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3, 1), (300, 7, 1), (9, 40, 1), (3, 5, 300), (2, 60, 20)])
def test_rows_and_columns_agree(dtype, shape):
    """The two layouts of both kernels give the same losses and gradients, extreme logits
    (1e4 apart, e^-80 probabilities), in-range or outside ignore_index, zero target
    probabilities and full smoothing included."""
    rng = np.random.default_rng(sum(shape))
    z = rng.normal(0.0, 3.0, shape)
    z[::4] *= 1e3
    z[1::5, 0] = 80.0
    y = rng.integers(0, shape[1], (shape[0], shape[2]))
    for ignore, eps, weighted in ((-100, 0.0, False), (1, 0.2, True), (-5, 1.0, True)):
        yy = np.where(rng.uniform(size=y.shape) < 0.2, ignore, y) if ignore < 0 else y
        w = (rng.uniform(0.1, 2.0, shape[1]) if weighted else np.ones(shape[1])).astype(dtype)
        rows, cols = _both_layouts((sce._ce_index, sce._ce_index_cols), 1, z.astype(dtype), yy, w, ignore,
                                   eps, 0.37)
        _assert_layouts_agree(rows, cols, dtype)
        a = rng.uniform(0.05, 1.0, shape)
        a[rng.uniform(size=shape) < 0.2] = 0.0
        p = (a / np.maximum(a.sum(axis=1, keepdims=True), 1e-12)).astype(dtype)
        rows, cols = _both_layouts((sce._ce_prob, sce._ce_prob_cols), 2, z.astype(dtype), p, w, eps, 0.37)
        _assert_layouts_agree(rows, cols, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_equal_rows(dtype):
    z = np.full((3, 4), 7.5, dtype)
    y = np.array([0, 3, 1])
    r = lossd.evaluate(LOSS, {"input": z, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [np.log(4.0)] * 3, dtype, what="loss")
    assert_close(r.grads["input"], np.full((3, 4), 0.25) - np.eye(4)[y], dtype, what="grad")
    p = np.full((3, 4), 0.25, dtype)
    rp = lossd.evaluate(LOSS, {"input": z, "target": p}, {"reduction": "sum"})
    assert_close(rp.loss, 3 * np.log(4.0), dtype, what="prob loss")
    assert np.all(np.abs(rp.grads["input"]) <= 1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ignore_index_by_hand(dtype):
    z = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.0], [2.0, -1.0, 0.0]], dtype)
    lq = z.astype(np.float64) - np.log(np.exp(z.astype(np.float64)).sum(axis=1, keepdims=True))
    w = np.array([1.0, 2.0, 4.0], dtype)
    # -100 (outside [0, C)) hit at row 1
    r = lossd.evaluate(LOSS, {"input": z, "target": np.array([2, -100, 0]), "weight": w}, {})
    assert_close(r.loss, (-4 * lq[0, 2] - lq[2, 0]) / 5.0, dtype, what="weighted mean")
    assert np.all(r.grads["input"][1] == 0)
    # ignore_index inside [0, C): class 1 positions are ignored, class 1 itself still gets gradient
    r = lossd.evaluate(LOSS, {"input": z, "target": np.array([1, 0, 2])},
                       {"ignore_index": 1, "reduction": "sum"})
    assert_close(r.loss, -lq[1, 0] - lq[2, 2], dtype, what="inside")
    assert np.all(r.grads["input"][0] == 0) and r.grads["input"][1, 1] != 0
    # a positive ignore_index outside [0, C)
    r = lossd.evaluate(LOSS, {"input": z, "target": np.array([9, 9, 1])},
                       {"ignore_index": 9, "reduction": "sum"})
    assert_close(r.loss, -lq[2, 1], dtype, what="outside")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["all_ignored", "zero_weights", "zero_weights_smoothed"])
def test_zero_total_weight_is_nan_with_zero_gradient(dtype, case):
    z = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.0]], dtype)
    params = {"reduction": "mean"}
    if case == "all_ignored":
        inputs = {"input": z, "target": np.array([-100, -100])}
    else:
        inputs = {"input": z, "target": np.array([0, 2]), "weight": np.array([0.0, 1.0, 0.0], dtype)}
        if case == "zero_weights_smoothed":
            params["label_smoothing"] = 0.3
    r = lossd.evaluate(LOSS, inputs, params)
    assert np.isnan(r.loss) and r.loss.dtype == dtype
    assert np.all(r.grads["input"] == 0)
    check_against_reference(LOSS, inputs, params, reference)
    for reduction in ("sum", "batchmean", "none"):
        other = lossd.evaluate(LOSS, inputs, {**params, "reduction": reduction})
        assert np.all(np.isfinite(other.loss))
        check_against_reference(LOSS, inputs, {**params, "reduction": reduction}, reference)


def test_k_dimensional_matches_flattened_positions():
    rng = np.random.default_rng(12)
    z = rng.normal(0.0, 1.0, (2, 3, 4, 5))
    y = rng.integers(0, 3, (2, 4, 5))
    r = lossd.evaluate(LOSS, {"input": z, "target": y}, {"reduction": "none", "label_smoothing": 0.1})
    flat_z = z.transpose(0, 2, 3, 1).reshape(-1, 3)
    f = lossd.evaluate(LOSS, {"input": flat_z, "target": y.reshape(-1)}, {"reduction": "none",
                                                                           "label_smoothing": 0.1})
    assert r.loss.shape == (2, 4, 5)
    np.testing.assert_allclose(r.loss.reshape(-1), f.loss, rtol=1e-14)
    np.testing.assert_allclose(r.grads["input"].transpose(0, 2, 3, 1).reshape(-1, 3), f.grads["input"],
                               rtol=1e-14)


def test_smoothed_index_equals_smoothed_probability_target():
    rng = np.random.default_rng(13)
    z = rng.normal(0.0, 1.0, (6, 4))
    y = rng.integers(0, 4, 6)
    w = rng.uniform(0.5, 2.0, 4)
    a = lossd.evaluate(LOSS, {"input": z, "target": y, "weight": w},
                       {"reduction": "none", "label_smoothing": 0.2})
    b = lossd.evaluate(LOSS, {"input": z, "target": np.eye(4)[y], "weight": w},
                       {"reduction": "none", "label_smoothing": 0.2}, grads=["input"])
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-13)
    np.testing.assert_allclose(a.grads["input"], b.grads["input"], rtol=1e-12, atol=1e-15)


def test_alias_resolves(client):
    inputs = _index_data((3, 4), np.float64, 6, True, -100)
    a = client.evaluate("cross_entropy", inputs, {"reduction": "none"})
    b = lossd.evaluate(LOSS, inputs, {"reduction": "none"})
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.grads["input"], b.grads["input"])
    assert a.loss_id == LOSS


@pytest.mark.parametrize("dtype", DTYPES)
def test_result_dtype_through_server(client, dtype):
    for inputs, names in ((_index_data((3, 4, 2), dtype, 2, True, -100), {"input"}),
                          (_prob_data((3, 4, 2), dtype, 3, True), {"input", "target"})):
        for reduction in REDUCTIONS:
            result = client.evaluate(LOSS, inputs, {"reduction": reduction, "label_smoothing": 0.1})
            assert result.loss.dtype == dtype
            assert set(result.grads) == names and all(g.dtype == dtype for g in result.grads.values())
            wide = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in inputs.items()}
            ref, _ = reference(wide, {"reduction": reduction, "label_smoothing": 0.1})
            assert_close(result.loss, ref, np.dtype(dtype), what=reduction)


def test_rejections(client):
    idx = _index_data((3, 4, 2), np.float64, 5)
    z, y = idx["input"], idx["target"]
    p = _prob_data((3, 4, 2), np.float64, 5)["target"]
    assert_rejected(client, LOSS, {"input": z, "target": np.where(y == 0, 4, y)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": z, "target": np.where(y == 0, -1, y)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": z, "target": np.where(y == 0, -1, y)}, {"ignore_index": 4},
                    "inputs.target")
    assert_rejected(client, LOSS, {"input": z, "target": y[:, :1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": z, "target": p[:, :3]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": z[:, 0, 0], "target": y[:, 0]}, {}, "inputs.input")
    assert_rejected(client, LOSS, {"input": z, "target": y, "weight": np.ones(3)}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": z, "target": y, "weight": np.ones((4, 1))}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": z, "target": y, "weight": -np.ones(4)}, {}, "inputs.weight")
    assert_rejected(client, LOSS, {"input": z, "target": y}, {"label_smoothing": 1.5},
                    "params.label_smoothing")
    assert_rejected(client, LOSS, {"input": z, "target": y}, {"label_smoothing": -0.1},
                    "params.label_smoothing")
    assert_rejected(client, LOSS, {"input": z, "target": y}, {"ignore_index": 2.0}, "params.ignore_index")
    assert_rejected(client, LOSS, {"input": z, "target": p + 0.5}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": z, "target": -p}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": z, "target": p}, {"ignore_index": 0}, "params.ignore_index")
    client.evaluate(LOSS, {"input": z, "target": p}, {"ignore_index": -1})     # negative is fine
    assert_rejected(client, LOSS, {"input": z, "target": p.astype(np.float32)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": z, "target": y.astype(np.uint8)}, {}, "inputs.target")
    assert_rejected(client, LOSS, {"input": z, "target": y}, {"reduction": "weighted_mean"},
                    "params.reduction")
    assert_rejected(client, LOSS, {"input": z, "target": y}, {}, "grads", grads=["target"])
    assert_rejected(client, LOSS, {"input": z, "target": y, "weight": np.ones(4)}, {}, "grads",
                    grads=["weight"])
    assert_rejected(client, "cross_entropy", {"input": z, "target": np.where(y == 0, 4, y)}, {},
                    "inputs.target")
