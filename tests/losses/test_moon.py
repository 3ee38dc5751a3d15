"""Tests of moon (metric.md §6)."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
import lossd_client
from tests.losses.harness import check_against_reference, check_finite_differences
from tests.reference.moon import reference

LOSS = "moon"
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 5), (7, 3), (411, 11)]          # batch 1, odd, >= 4096 elements (parallel build)
REDUCTIONS = ["none", "sum", "mean", "batchmean"]
VARIANTS = ["batch", "source", "target", "both"]


def make(shape, dtype, seed=0, variant="batch"):
    rng = np.random.default_rng(seed)
    n, a = shape
    p = rng.uniform(0.1, 0.9, a)                       # unbalanced attributes
    labels = np.where(rng.random(shape) < p, 1, -1)
    inputs = {"scores": (rng.standard_normal(shape)).astype(dtype), "labels": labels}
    if variant in ("source", "both"):
        src = rng.uniform(0.05, 0.95, a)
        src[0] = 0.0
        if a > 2:
            src[2] = 1.0
        inputs["source_pos_fraction"] = src.astype(dtype)
    if variant in ("target", "both"):
        inputs["target_pos_fraction"] = rng.uniform(0.1, 0.9, a).astype(dtype)
    return inputs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_against_reference(dtype, shape, reduction, variant):
    inputs = make(shape, dtype, seed=shape[0], variant=variant)
    check_against_reference(LOSS, inputs, {"reduction": reduction}, reference)


@pytest.mark.parametrize("variant", VARIANTS)
def test_finite_differences(variant):
    inputs = make((5, 4), np.float64, seed=2, variant=variant)
    check_finite_differences(LOSS, inputs, {"reduction": "sum"})
    check_finite_differences(LOSS, inputs, {"reduction": "mean"})


def service_weights(inputs):
    """w_ij read back from the gradient at scores = labels + 1 (dR/dscores = 2 w under sum)."""
    probe = {**inputs, "scores": (inputs["labels"] + 1).astype(np.float64)}
    return lossd.evaluate(LOSS, probe, {"reduction": "sum"}).grads["scores"] / 2.0


def test_balanced_weights_match_published_rule():
    # MXNet MoonOutput / calc_MOON_weights: (1-s)/s for positives when s > 0.5,
    # s/(1-s) for negatives when s < 0.5, else 1.
    rng = np.random.default_rng(5)
    labels = np.where(rng.random((40, 6)) < np.array([0.1, 0.3, 0.5, 0.7, 0.95, 1.0]), 1, -1)
    labels[:20, 2] = 1
    labels[20:, 2] = -1                         # exactly balanced attribute
    labels[:, 5] = 1                            # all positive
    w = service_weights({"scores": np.zeros(labels.shape), "labels": labels})
    s = np.mean(labels == 1, axis=0)
    for i in range(40):
        for j in range(6):
            if labels[i, j] == 1:
                expected = (1 - s[j]) / s[j] if s[j] > 0.5 else 1.0
            else:
                expected = s[j] / (1 - s[j]) if s[j] < 0.5 else 1.0
            assert w[i, j] == pytest.approx(expected, rel=1e-14, abs=0), (i, j, s[j])
    assert np.all(w[:, 5] == 0.0)               # fraction 1: the present label gets weight 0
    assert np.all(w[:, 2] == 1.0)


def test_unbalanced_target_weights_element_by_element():
    labels = np.array([[1, 1, -1], [1, -1, -1], [1, -1, -1], [-1, -1, 1]])
    src = np.array([0.75, 0.2, 0.4])
    tgt = np.array([0.6, 0.1, 0.9])
    w = service_weights({"scores": np.zeros((4, 3)), "labels": labels, "source_pos_fraction": src,
                         "target_pos_fraction": tgt})
    # attribute 0: positives majority (0.75 > 0.6): w+ = 0.25*0.6/(0.75*0.4) = 0.5; negatives 1
    # attribute 1: T(+)=0.1 < S(+)=0.2: w+ = 0.8*0.1/(0.2*0.9) = 4/9; T(-)=0.9 >= 0.8: w- = 1
    # attribute 2: T(+)=0.9 >= 0.4: w+ = 1; T(-)=0.1 < 0.6: w- = 0.4*0.1/(0.6*0.9) = 2/27
    expected = np.array([[0.5, 4 / 9, 2 / 27], [0.5, 1, 2 / 27], [0.5, 1, 2 / 27], [1, 1, 1]])
    np.testing.assert_allclose(w, expected, rtol=1e-15)
    # weighted masses stand in the ratio T+ : T- (attribute 0: 3 * 0.5 : 1 * 1 = 0.6 : 0.4)
    s0 = np.array([3 / 4, 1 / 4, 1 / 4])       # the true fractions of labels
    wb = service_weights({"scores": np.zeros((4, 3)), "labels": labels, "source_pos_fraction": s0,
                          "target_pos_fraction": tgt})
    for j in range(3):
        pos = wb[labels[:, j] == 1, j].sum()
        neg = wb[labels[:, j] == -1, j].sum()
        assert pos / (pos + neg) == pytest.approx(tgt[j], rel=1e-14)


def test_known_loss_and_source_zero():
    scores = np.array([[0.5, -2.0], [1.0, 0.0]])
    labels = np.array([[1, -1], [1, 1]])
    res = lossd.evaluate(LOSS, {"scores": scores, "labels": labels}, {"reduction": "none"})
    # attribute 0 all +1: weight 0; attribute 1 balanced: weight 1
    np.testing.assert_allclose(res.loss, [1.0, 1.0], rtol=1e-15)
    # a given source fraction 0 with a positive present: T(+) >= S(+), weight 1
    res = lossd.evaluate(LOSS, {"scores": scores, "labels": labels,
                                "source_pos_fraction": np.array([0.0, 0.5])}, {"reduction": "none"})
    np.testing.assert_allclose(res.loss, [0.25 + 1.0, 0.0 + 1.0], rtol=1e-15)


def test_result_dtype_through_server(client):
    for dtype in DTYPES:
        res = client.evaluate(LOSS, make((5, 3), dtype, variant="both"))
        assert res.loss.dtype == dtype and res.grads["scores"].dtype == dtype
        assert set(res.grads) == {"scores"}
        res = client.evaluate(LOSS, {**make((5, 3), dtype), "labels": make((5, 3), dtype)["labels"]
                                     .astype(np.int32)}, {"reduction": "none"})
        assert res.loss.shape == (5,) and res.loss.dtype == dtype


REJECTIONS = {
    "labels_01": ({"labels": np.array([[0, 1, 1], [1, 0, 1]])}, "inputs.labels"),
    "labels_two": ({"labels": np.array([[2, 1, 1], [1, -1, 1]])}, "inputs.labels"),
    "labels_float": ({"labels": np.array([[1.0, 1.0, -1.0], [1.0, -1.0, 1.0]])}, "inputs.labels"),
    "labels_shape": ({"labels": np.array([[1, 1], [1, -1]])}, "inputs.labels"),
    "scores_rank1": ({"scores": np.zeros(6), "labels": np.ones(6, np.int64)}, "inputs.scores"),
    "scores_rank3": ({"scores": np.zeros((2, 3, 1)), "labels": np.ones((2, 3, 1), np.int64)},
                     "inputs.scores"),
    "source_above_one": ({"source_pos_fraction": np.array([0.5, 1.2, 0.3])}, "inputs.source_pos_fraction"),
    "source_negative": ({"source_pos_fraction": np.array([0.5, -0.2, 0.3])}, "inputs.source_pos_fraction"),
    "source_shape": ({"source_pos_fraction": np.array([0.5, 0.3])}, "inputs.source_pos_fraction"),
    "target_zero": ({"target_pos_fraction": np.array([0.5, 0.0, 0.3])}, "inputs.target_pos_fraction"),
    "target_one": ({"target_pos_fraction": np.array([0.5, 1.0, 0.3])}, "inputs.target_pos_fraction"),
    "target_shape": ({"target_pos_fraction": np.array([[0.5, 0.5, 0.3]])}, "inputs.target_pos_fraction"),
    "target_mixed": ({"target_pos_fraction": np.array([0.5, 0.5, 0.3], np.float32)},
                     "inputs.target_pos_fraction"),
    "target_int": ({"target_pos_fraction": np.array([1, 1, 1])}, "inputs.target_pos_fraction"),
    "scores_inf": ({"scores": np.array([[np.inf, 0, 0], [0, 0, 0]])}, "inputs.scores"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejections(client, case):
    over, field = REJECTIONS[case]
    inputs = {**make((2, 3), np.float64), **over}
    with pytest.raises(lossd_client.InvalidArgument) as exc:
        client.evaluate(LOSS, inputs, {})
    assert field in exc.value.message
    assert field in [v.field for v in exc.value.field_violations]


def test_other_rejections(client):
    for params, grads, field in (({"margin": 1.0}, None, "params.margin"),
                                 ({"reduction": "avg"}, None, "params.reduction"),
                                 ({}, ["target_pos_fraction"], "grads")):
        with pytest.raises(lossd_client.InvalidArgument) as exc:
            client.evaluate(LOSS, make((2, 3), np.float64, variant="both"), params, grads=grads)
        assert field in [v.field for v in exc.value.field_violations]
