"""The explicit list of losses. Adding a loss: one module with ``SPEC``, one line here.

Aliases are resolved here only; responses, metrics and logs use canonical ids.
"""

from __future__ import annotations

import difflib

from lossd.losses import (
    arcface,
    binary_cross_entropy,
    categorical_cross_entropy,
    center,
    combined_margin,
    contrastive,
    cosface,
    cosine_embedding,
    euclidean,
    f_divergence,
    gaussian_nll,
    hinge_embedding,
    huber,
    info_nce,
    kl_div,
    l1,
    l2_distance,
    l2_loss,
    l_softmax,
    margin_ranking,
    moon,
    mse,
    nll_loss,
    npair,
    poisson_nll,
    sigmoid_cross_entropy,
    sigmoid_focal,
    smooth_l1,
    soft_margin,
    softmax_cross_entropy,
    softmax_focal,
    sphereface,
    triplet_batch_hard,
    triplet_margin,
    tv,
)
from lossd.spec import LossSpec
from lossd_client.errors import NotFound

SPECS: tuple[LossSpec, ...] = (
    sphereface.SPEC,
    l_softmax.SPEC,
    l1.SPEC,
    margin_ranking.SPEC,
    cosine_embedding.SPEC,
    soft_margin.SPEC,
    hinge_embedding.SPEC,
    combined_margin.SPEC,
    cosface.SPEC,
    gaussian_nll.SPEC,
    poisson_nll.SPEC,
    huber.SPEC,
    smooth_l1.SPEC,
    arcface.SPEC,
    euclidean.SPEC,
    l2_distance.SPEC,
    l2_loss.SPEC,
    mse.SPEC,
    softmax_cross_entropy.SPEC,
    tv.SPEC,
    f_divergence.SPEC,
    kl_div.SPEC,
    nll_loss.SPEC,
    categorical_cross_entropy.SPEC,
    sigmoid_cross_entropy.SPEC,
    binary_cross_entropy.SPEC,
    contrastive.SPEC,
    triplet_margin.SPEC,
    sigmoid_focal.SPEC,
    softmax_focal.SPEC,
    moon.SPEC,
    center.SPEC,
    triplet_batch_hard.SPEC,
    npair.SPEC,
    info_nce.SPEC,
)

BY_ID: dict[str, LossSpec] = {spec.id: spec for spec in SPECS}
BY_NAME: dict[str, LossSpec] = {**BY_ID, **{a: s for s in SPECS for a in s.aliases}}


def resolve(name: str) -> LossSpec:
    """The spec of a loss id or alias; NotFound (with close matches) otherwise."""
    spec = BY_NAME.get(name)
    if spec is None:
        close = difflib.get_close_matches(str(name), list(BY_NAME), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFound(f"unknown loss {str(name)[:100]!r}{hint} (ListLosses lists all {len(SPECS)})")
    return spec


def canonical_id(name: str) -> str | None:
    """The canonical id of a name, or None when unknown (for bounded metric labels)."""
    spec = BY_NAME.get(name)
    return spec.id if spec else None
