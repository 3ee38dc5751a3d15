"""The registry: every loss file registered, every spec documented and referenced,
ids and aliases unique, the full list of ../shared/losses/README.md §11 present."""

from __future__ import annotations

import importlib
import pathlib
import sys

import numpy as np
import pytest

from lossd.losses.registry import BY_NAME, SPECS, resolve
from lossd.spec import Kind

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOSS_DIR = ROOT / "service" / "lossd" / "losses"
NOT_LOSSES = {"__init__", "registry", "common"}

ALL_IDS = {
    "mse", "l1", "l2_loss", "l2_distance", "euclidean", "smooth_l1", "huber", "binary_cross_entropy",
    "categorical_cross_entropy", "softmax_cross_entropy", "nll_loss", "sigmoid_cross_entropy", "kl_div",
    "f_divergence", "tv", "poisson_nll", "gaussian_nll", "hinge_embedding", "soft_margin",
    "cosine_embedding", "margin_ranking", "center", "sigmoid_focal", "softmax_focal", "l_softmax",
    "sphereface", "contrastive", "triplet_margin", "triplet_batch_hard", "moon", "arcface", "cosface",
    "combined_margin", "npair", "info_nce",
}
ALIASES = {
    "mse_loss": "mse", "l1_loss": "l1", "smooth_l1_loss": "smooth_l1", "huber_loss": "huber",
    "cross_entropy": "softmax_cross_entropy",
    "binary_cross_entropy_with_logits": "sigmoid_cross_entropy", "poisson_nll_loss": "poisson_nll",
    "gaussian_nll_loss": "gaussian_nll", "hinge_embedding_loss": "hinge_embedding",
    "soft_margin_loss": "soft_margin", "cosine_embedding_loss": "cosine_embedding",
    "margin_ranking_loss": "margin_ranking", "triplet_margin_loss": "triplet_margin",
    "focal_loss": "sigmoid_focal", "additive_angular_margin": "arcface", "large_margin_softmax": "l_softmax",
    "a_softmax": "sphereface",
}


def test_every_loss_file_is_registered():
    files = {p.stem for p in LOSS_DIR.glob("*.py") if p.stem not in NOT_LOSSES and not p.stem.startswith("_")}
    registered = {sys.modules[s.compute.__module__].__name__.rsplit(".", 1)[1] for s in SPECS}
    assert files == registered


def test_ids_and_aliases_unique():
    ids = [s.id for s in SPECS]
    aliases = [a for s in SPECS for a in s.aliases]
    assert len(ids) == len(set(ids))
    assert len(aliases) == len(set(aliases))
    assert not set(ids) & set(aliases)


def test_all_ids_of_the_spec_are_present():
    assert {s.id for s in SPECS} == ALL_IDS


@pytest.mark.parametrize("alias,loss_id", sorted(ALIASES.items()))
def test_aliases(alias, loss_id):
    if loss_id not in {s.id for s in SPECS}:
        pytest.fail(f"{loss_id} is not registered")
    assert resolve(alias).id == loss_id and BY_NAME[alias].id == loss_id


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_spec_is_documented_and_referenced(spec):
    module = sys.modules[spec.compute.__module__]
    assert module.__doc__ and spec.id in module.__doc__.split("\n", 1)[0]
    assert spec.summary and spec.loss_shape
    reference = importlib.import_module(f"tests.reference.{spec.id}")
    assert callable(reference.reference)
    assert spec.inputs[0].kind is Kind.FLOAT and spec.inputs[0].differentiable
    for i in spec.inputs:
        assert i.shape and i.description
    for p in spec.params:
        assert p.description and p.range_text()
        assert p.name != "reduction"
    assert spec.default_reduction == ("sum" if spec.id == "l2_loss" else "mean")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_examples_match_their_reference(spec):
    """The warm-up examples are valid requests whose results agree with the reference."""
    from tests.losses.harness import check_against_reference

    reference = importlib.import_module(f"tests.reference.{spec.id}").reference
    for dtype in (np.float32, np.float64):
        for inputs, params in spec.examples(np.dtype(dtype)):
            k = float(params.get("s", 64.0)) if spec.id in {"arcface", "cosface", "combined_margin"} else 1.0
            for reduction in ("mean", "none"):
                check_against_reference(spec.id, inputs, {**params, "reduction": reduction}, reference, k=k)
