"""Test functions the +-1-label losses (hinge_embedding, soft_margin, margin_ranking,
cosine_embedding) run the same way, built per loss from one valid float64 request: float
labels give the int64 result, the generic README §6 rejections, and the rejected label
arrays (zero, two, half, bool, int8, ...)."""

from __future__ import annotations

import pytest

from tests.losses._shared import (
    assert_float_signs_accepted,
    assert_rejected,
    bad_sign_labels,
    generic_rejections,
)


def sign_label_tests(loss, valid, differentiable, float_inputs, float_params=None):
    """``test_float_labels_accepted`` (on ``float_inputs`` with ``float_params``),
    ``test_rejections`` and ``test_rejects_labels``; ``target`` is the label input."""

    def test_float_labels_accepted():
        assert_float_signs_accepted(loss, float_inputs, float_params)

    @pytest.mark.parametrize("inputs, params, grads, field",
                             generic_rejections(valid, differentiable, ["target"]))
    def test_rejections(client, inputs, params, grads, field):
        assert_rejected(client, loss, inputs, params, field, grads)

    @pytest.mark.parametrize("target", bad_sign_labels(valid["target"]))
    def test_rejects_labels(client, target):
        assert_rejected(client, loss, {**valid, "target": target}, {}, "inputs.target")

    return test_float_labels_accepted, test_rejections, test_rejects_labels
