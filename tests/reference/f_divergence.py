"""Reference for f_divergence (core.md §5.2), float64 NumPy from the table of terms.

t(p, q) and dt/dq per element, l = sum over dim 1; logits: q = softmax(z, 1) and
dR/dz = q (g - sum_j q_j g_j) with g = s dt/dq; probs: dR/dq = g.
"""

from __future__ import annotations

import numpy as np

LOG2 = np.log(2.0)


def _terms(divergence, p, q):
    pos = p > 0
    ps = np.where(pos, p, 1.0)          # safe p for logs/divisions (masked out where p = 0)
    if divergence == "kl":
        t = np.where(pos, p * np.log(ps / q), 0.0)
        d = -p / q
    elif divergence == "reverse_kl":
        t = q * np.log(q / p)
        d = np.log(q / p) + 1.0
    elif divergence == "pearson_chi2":
        t = np.where(pos, (p - q) ** 2 / q, q)
        d = np.where(pos, 1.0 - p ** 2 / q ** 2, 1.0)
    elif divergence == "neyman_chi2":
        t = (q - p) ** 2 / p
        d = 2.0 * (q - p) / p
    elif divergence == "squared_hellinger":
        t = (np.sqrt(p) - np.sqrt(q)) ** 2
        d = 1.0 - np.sqrt(p / q)
    elif divergence == "jensen_shannon":
        t = np.where(pos, 0.5 * (p * np.log(2 * ps / (ps + q)) + q * np.log(2 * q / (p + q))),
                     0.5 * q * LOG2)
        d = np.where(pos, 0.5 * np.log(2 * q / (p + q)), 0.5 * LOG2)
    elif divergence == "total_variation":
        t = 0.5 * np.abs(p - q)
        d = 0.5 * np.sign(q - p)
    else:
        raise ValueError(divergence)
    return t, d


def reference(inputs, params):
    z = np.asarray(inputs["input"], np.float64)
    p = np.asarray(inputs["target"], np.float64)
    divergence = params.get("divergence", "kl")
    logits = params.get("input_kind", "logits") == "logits"
    if logits:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        q = e / e.sum(axis=1, keepdims=True)
    else:
        q = z
    t, d = _terms(divergence, p, q)
    loss = t.sum(axis=1)
    reduction = params["reduction"]
    s = {"none": 1.0, "sum": 1.0, "mean": 1.0 / loss.size, "batchmean": 1.0 / z.shape[0]}[reduction]
    value = loss if reduction == "none" else loss.sum() * s
    g = s * d
    grad = q * (g - (q * g).sum(axis=1, keepdims=True)) if logits else g
    return value, {"input": grad}
