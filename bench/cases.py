"""Per-loss input builders for the sizes issue 7 names (NumPy only: no torch here).

Every loss of ``lossd.losses.registry.SPECS`` whose id has a builder below is measured;
a loss without one is reported as skipped, so the suite keeps working as losses land.

Families and their sizes (elements of the primary input):
* ``ew`` elementwise, inputs of one shape (n,): small 1e3, medium 1e5, large 1e7.
* ``rows`` per-sample (N, D): small 8x128, medium 200x500, large 20000x500
  (triplet_margin: 4096x512, the size the issue names).
* ``ce`` class scores (N, C): small 100x10, medium 1000x100, large 4096x1000 and 65536x10.
* ``face`` features (N, D) + weight (C, D): small 16x32/64, medium 128x128/1000,
  large 1024x512/10000.
* ``attr`` (N, A) attribute scores (moon): small 25x40, medium 2500x40, large 250000x40.
* ``center`` features (N, D) + centers (C, D): small 8x128/10, medium 200x500/100,
  large 20000x500/1000.
* ``pairwise`` embeddings whose cost is an N x N matrix (triplet_batch_hard, npair,
  info_nce): small 8x128, medium 200x500, large 4096x512.
* ``image`` NCHW images (tv): small 1x3x18x18, medium 2x3x128x128, large 32x3x320x320.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Inputs = dict[str, np.ndarray]
Params = dict[str, Any]

SIZES: dict[str, list[tuple[str, dict[str, int]]]] = {
    "ew": [("small", {"n": 1000}), ("medium", {"n": 100_000}), ("large", {"n": 10_000_000})],
    "rows": [("small", {"n": 8, "d": 128}), ("medium", {"n": 200, "d": 500}),
             ("large", {"n": 20_000, "d": 500})],
    "triplet": [("small", {"n": 8, "d": 128}), ("medium", {"n": 200, "d": 500}),
                ("large", {"n": 4096, "d": 512})],
    "ce": [("small", {"n": 100, "c": 10}), ("medium", {"n": 1000, "c": 100}),
           ("large", {"n": 4096, "c": 1000}), ("large", {"n": 65536, "c": 10})],
    "face": [("small", {"n": 16, "d": 32, "c": 64}), ("medium", {"n": 128, "d": 128, "c": 1000}),
             ("large", {"n": 1024, "d": 512, "c": 10000})],
    "attr": [("small", {"n": 25, "a": 40}), ("medium", {"n": 2500, "a": 40}),
             ("large", {"n": 250_000, "a": 40})],
    "center": [("small", {"n": 8, "d": 128, "c": 10}), ("medium", {"n": 200, "d": 500, "c": 100}),
               ("large", {"n": 20_000, "d": 500, "c": 1000})],
    "pairwise": [("small", {"n": 8, "d": 128}), ("medium", {"n": 200, "d": 500}),
                 ("large", {"n": 4096, "d": 512})],
    "image": [("small", {"n": 1, "c": 3, "h": 18, "w": 18}), ("medium", {"n": 2, "c": 3, "h": 128, "w": 128}),
              ("large", {"n": 32, "c": 3, "h": 320, "w": 320})],
}


@dataclass(frozen=True)
class Case:
    """How to build one loss's inputs: ``build(rng, dtype, **dims) -> (inputs, params)``.

    ``grads``: the inputs every contender differentiates (None: all differentiable ones).
    ``elementwise``: measured against the triad bandwidth ceiling too.
    """

    loss: str
    family: str
    build: Callable[..., tuple[Inputs, Params]]
    grads: tuple[str, ...] | None = None
    elementwise: bool = False
    note: str = ""
    params: Params = field(default_factory=dict)

    def variants(self) -> list[tuple[str, str, dict[str, int]]]:
        """(size class, label, dims) for every size this case runs at."""
        return [(size, label_of(dims), dims) for size, dims in SIZES[self.family]]


def label_of(dims: dict[str, int]) -> str:
    if set(dims) == {"n"}:
        return f"{dims['n']:.0e}".replace("e+0", "e")
    return "x".join(f"{k.upper()}={v}" for k, v in dims.items())


def _f(rng: np.random.Generator, shape: Any, dtype: np.dtype, lo: float = -2.0,
       hi: float = 2.0) -> np.ndarray:
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def _sign(rng: np.random.Generator, shape: Any, dtype: np.dtype) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)


def _pair(rng, dtype, n):
    return {"input": _f(rng, n, dtype), "target": _f(rng, n, dtype)}, {}


def _probs(rng, dtype, n):
    return {"input": _f(rng, n, dtype, 0.02, 0.98), "target": _f(rng, n, dtype, 0.0, 1.0)}, {}


def _logits_targets(rng, dtype, n):
    return {"input": _f(rng, n, dtype, -4, 4), "target": _f(rng, n, dtype, 0.0, 1.0)}, {}


def _focal(rng, dtype, n):
    return {"logits": _f(rng, n, dtype, -4, 4),
            "targets": (rng.random(n) < 0.3).astype(dtype)}, {}


def _poisson(rng, dtype, n):
    return {"input": _f(rng, n, dtype, -2, 2), "target": rng.poisson(2.0, n).astype(dtype)}, {}


def _gauss(rng, dtype, n):
    return {"input": _f(rng, n, dtype), "target": _f(rng, n, dtype),
            "var": _f(rng, n, dtype, 0.5, 2.0)}, {}


def _signed(rng, dtype, n):
    return {"input": _f(rng, n, dtype), "target": _sign(rng, n, dtype)}, {}


def _ranking(rng, dtype, n):
    return {"input1": _f(rng, n, dtype), "input2": _f(rng, n, dtype), "target": _sign(rng, n, dtype)}, {}


def _kl(rng, dtype, n):
    return {"input": np.log(_f(rng, n, dtype, 0.01, 1.0)).astype(dtype),
            "target": _f(rng, n, dtype, 0.01, 1.0)}, {}


def _rows_pair(rng, dtype, n, d):
    return {"input": _f(rng, (n, d), dtype), "target": _f(rng, (n, d), dtype)}, {}


def _cosine(rng, dtype, n, d):
    return {"input1": _f(rng, (n, d), dtype), "input2": _f(rng, (n, d), dtype),
            "target": _sign(rng, n, dtype)}, {"margin": 0.1}


def _contrastive(rng, dtype, n, d):
    scale = 1.0 / np.sqrt(d)
    return {"x1": _f(rng, (n, d), dtype, -scale, scale), "x2": _f(rng, (n, d), dtype, -scale, scale),
            "label": (rng.random(n) < 0.5).astype(np.int64)}, {"margin": 1.0}


def _triplet(rng, dtype, n, d):
    return {"anchor": _f(rng, (n, d), dtype), "positive": _f(rng, (n, d), dtype),
            "negative": _f(rng, (n, d), dtype)}, {}


def _ce_index(rng, dtype, n, c):
    return {"input": _f(rng, (n, c), dtype, -4, 4), "target": rng.integers(0, c, n).astype(np.int64)}, {}


def _nll(rng, dtype, n, c):
    z = _f(rng, (n, c), np.float64, -4, 4)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return {"input": logp.astype(dtype), "target": rng.integers(0, c, n).astype(np.int64)}, {}


def _cce(rng, dtype, n, c):
    q = _f(rng, (n, c), np.float64, 0.1, 1.0)
    p = _f(rng, (n, c), np.float64, 0.1, 1.0)
    return {"input": (q / q.sum(1, keepdims=True)).astype(dtype),
            "target": (p / p.sum(1, keepdims=True)).astype(dtype)}, {}


def _softmax_focal(rng, dtype, n, c):
    return {"logits": _f(rng, (n, c), dtype, -4, 4), "labels": rng.integers(0, c, n).astype(np.int64)}, {}


def _face(rng, dtype, n, d, c):
    return {"features": _f(rng, (n, d), dtype, -1, 1), "weight": _f(rng, (c, d), dtype, -1, 1),
            "labels": rng.integers(0, c, n).astype(np.int64)}, {}


def _center(rng, dtype, n, d, c):
    return {"features": _f(rng, (n, d), dtype, -1, 1), "labels": rng.integers(0, c, n).astype(np.int64),
            "centers": _f(rng, (c, d), dtype, -1, 1)}, {}


def _fdiv(rng, dtype, n, c):
    p = _f(rng, (n, c), np.float64, 0.1, 1.0)
    return {"input": _f(rng, (n, c), dtype, -4, 4), "target": (p / p.sum(1, keepdims=True)).astype(dtype)}, {}


def _embeddings(rng, dtype, n, d):
    """Rows of norm about 1 (dot products of order 1, as after a normalising layer)."""
    return _f(rng, (n, d), dtype, -np.sqrt(3.0 / d), np.sqrt(3.0 / d))


def _batch_hard(rng, dtype, n, d):
    return {"embeddings": _f(rng, (n, d), dtype),
            "labels": rng.integers(0, max(2, n // 8), n).astype(np.int64)}, {}


def _npair(rng, dtype, n, d):
    return {"anchors": _embeddings(rng, dtype, n, d), "positives": _embeddings(rng, dtype, n, d),
            "labels": rng.integers(0, max(2, n // 2), n).astype(np.int64)}, {}


def _info_nce(rng, dtype, n, d):
    return {"query": _f(rng, (n, d), dtype), "positive_key": _f(rng, (n, d), dtype)}, {}


def _image(rng, dtype, n, c, h, w):
    return {"input": _f(rng, (n, c, h, w), dtype, 0.0, 1.0)}, {}


def _moon(rng, dtype, n, a):
    labels = np.where(rng.random((n, a)) < 0.3, 1, -1).astype(np.int64)
    return {"scores": _f(rng, (n, a), dtype), "labels": labels}, {}


CASES: dict[str, Case] = {c.loss: c for c in (
    Case("mse", "ew", _pair, elementwise=True),
    Case("l1", "ew", _pair, elementwise=True),
    Case("l2_loss", "ew", _pair, elementwise=True),
    Case("smooth_l1", "ew", _pair, elementwise=True),
    Case("huber", "ew", _pair, elementwise=True),
    Case("poisson_nll", "ew", _poisson, elementwise=True),
    Case("gaussian_nll", "ew", _gauss, elementwise=True),
    Case("hinge_embedding", "ew", _signed, elementwise=True),
    Case("soft_margin", "ew", _signed, elementwise=True),
    Case("margin_ranking", "ew", _ranking, elementwise=True),
    Case("kl_div", "ew", _kl, elementwise=True),
    Case("sigmoid_cross_entropy", "ew", _logits_targets, elementwise=True),
    Case("binary_cross_entropy", "ew", _probs, grads=("input",), elementwise=True,
         note="input gradient only (PyTorch's BCE has no target gradient)"),
    Case("sigmoid_focal", "ew", _focal, elementwise=True),
    Case("l2_distance", "rows", _rows_pair),
    Case("euclidean", "rows", _rows_pair),
    Case("cosine_embedding", "rows", _cosine),
    Case("contrastive", "rows", _contrastive),
    Case("triplet_margin", "triplet", _triplet),
    Case("softmax_cross_entropy", "ce", _ce_index),
    Case("nll_loss", "ce", _nll),
    Case("categorical_cross_entropy", "ce", _cce),
    Case("softmax_focal", "ce", _softmax_focal),
    Case("arcface", "face", _face),
    Case("cosface", "face", _face),
    Case("combined_margin", "face", _face),
    Case("moon", "attr", _moon),
    Case("l_softmax", "face", _face),
    Case("sphereface", "face", _face),
    Case("center", "center", _center, note="without the optional logits (center term only)"),
    Case("f_divergence", "ce", _fdiv, note="divergence kl on logits (the default)"),
    Case("triplet_batch_hard", "pairwise", _batch_hard),
    Case("npair", "pairwise", _npair),
    Case("info_nce", "pairwise", _info_nce, note="in-batch negatives (no negative_keys)"),
    Case("tv", "image", _image, note="variant l1 (the default)"),
)}


def build(loss: str, dims: dict[str, int], dtype: Any = np.float32, seed: int = 7) -> tuple[Inputs, Params]:
    """The inputs and params of ``loss`` at ``dims`` (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    return CASES[loss].build(rng, np.dtype(dtype), **dims)


def registered() -> tuple[list[str], list[str]]:
    """(loss ids with a case, loss ids without one) among the registry's specs."""
    from lossd.losses.registry import SPECS

    ids = [s.id for s in SPECS]
    return [i for i in ids if i in CASES], [i for i in ids if i not in CASES]
