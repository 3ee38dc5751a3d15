"""The contenders of the kernel benchmark: PyTorch eager forward + autograd backward, and
a vectorised NumPy forward + hand-written gradients, for every loss of ``bench.cases``.

Both compute the default reduction (mean, or lossd's default) and the gradients of the
inputs the parent names. torch is imported lazily (it is an optional bench dependency).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

# ----------------------------------------------------------------------------- PyTorch


def torch_loss(loss: str) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    """``f(tensors, params) -> scalar tensor`` for ``loss`` in PyTorch eager."""
    import torch
    import torch.nn.functional as F

    def sq_half(t, p):
        return ((t["input"] - t["target"]) ** 2).sum() / 2

    def focal(t, p, alpha=0.25, gamma=2.0):
        x, y = t["logits"], t["targets"]
        prob = torch.sigmoid(x)
        ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        p_t = prob * y + (1 - prob) * (1 - y)
        a_t = alpha * y + (1 - alpha) * (1 - y)
        return (a_t * ce * (1 - p_t) ** gamma).mean()

    def softmax_focal(t, p, gamma=2.0):
        logp = F.log_softmax(t["logits"], dim=1).gather(1, t["labels"][:, None])[:, 0]
        return (-(1 - logp.exp()) ** gamma * logp).mean()

    def contrastive(t, p):
        d = torch.linalg.vector_norm(t["x1"] - t["x2"], dim=1)
        y = t["label"].to(d.dtype)
        return (0.5 * (y * d ** 2 + (1 - y) * torch.clamp(p["margin"] - d, min=0) ** 2)).mean()

    def margin(kind: str):
        def f(t, p, s=64.0):
            x, w, y = t["features"], t["weight"], t["labels"]
            cos = F.normalize(x, dim=1) @ F.normalize(w, dim=1).T
            c = cos.gather(1, y[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
            if kind == "arcface":
                m = 0.5
                phi = c * np.cos(m) - torch.sqrt(1 - c * c) * np.sin(m)
                target = torch.where(c > np.cos(np.pi - m), phi, c - m * np.sin(m))
            elif kind == "cosface":
                target = c - 0.35
            else:
                target = torch.cos(torch.acos(c) + 0.3) - 0.2
            logits = cos.scatter(1, y[:, None], target) * s
            return F.cross_entropy(logits, y)
        return f

    def moon(t, p):
        return (t["_w"] * (t["scores"] - t["labels"].to(t["scores"].dtype)) ** 2).sum(1).mean()

    def large_margin(normalise_weight: bool, m: int = 4):
        """L-Softmax / A-Softmax with lambda = 0: target logit |x||w_y| psi(cos), psi by Chebyshev."""
        def f(t, p):
            x, w, y = t["features"], t["weight"], t["labels"]
            if normalise_weight:
                w = F.normalize(w, dim=1)
            d = x @ w.T
            xn = torch.linalg.vector_norm(x, dim=1)
            wn = torch.linalg.vector_norm(w[y], dim=1)
            c = d.gather(1, y[:, None])[:, 0] / (xn * wn)
            with torch.no_grad():
                k = torch.clamp(torch.floor(m * torch.acos(c.clamp(-1, 1)) / np.pi), max=m - 1)
            t_prev, t_cur = torch.ones_like(c), c
            for _ in range(m - 1):
                t_prev, t_cur = t_cur, 2 * c * t_cur - t_prev
            psi = (1 - 2 * torch.remainder(k, 2)) * t_cur - 2 * k
            return F.cross_entropy(d.scatter(1, y[:, None], (xn * wn * psi)[:, None]), y)
        return f

    def center(t, p):
        diff = t["features"] - t["centers"][t["labels"]]
        return 0.5 * (diff * diff).sum(1).mean()

    def batch_hard(t, p, margin=0.3):
        x, y = t["embeddings"], t["labels"]
        dist = torch.cdist(x, x)
        same = y[:, None] == y[None, :]
        eye = torch.eye(len(y), dtype=torch.bool)
        hardest_pos = torch.where(same & ~eye, dist, -torch.inf).max(1).values
        hardest_neg = torch.where(same, torch.inf, dist).min(1).values
        valid = torch.isfinite(hardest_pos) & torch.isfinite(hardest_neg)
        z = torch.clamp(margin + hardest_pos[valid] - hardest_neg[valid], min=0)
        return z.sum() / valid.sum()

    def npair(t, p, reg=0.002):
        a, q, y = t["anchors"], t["positives"], t["labels"]
        same = (y[:, None] == y[None, :]).to(a.dtype)
        target = same / same.sum(1, keepdim=True)
        xent = -(target * F.log_softmax(a @ q.T, dim=1)).sum(1)
        return (xent + 0.25 * reg * ((a * a).sum(1) + (q * q).sum(1))).mean()

    def info_nce(t, p, tau=0.1):
        q, k = F.normalize(t["query"], dim=1), F.normalize(t["positive_key"], dim=1)
        return F.cross_entropy(q @ k.T / tau, torch.arange(len(q)))

    def tv(t, p):
        x = t["input"]
        return ((x[:, :, 1:] - x[:, :, :-1]).abs().sum((1, 2, 3))
                + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().sum((1, 2, 3))).mean()

    table: dict[str, Callable] = {
        "mse": lambda t, p: F.mse_loss(t["input"], t["target"]),
        "l1": lambda t, p: F.l1_loss(t["input"], t["target"]),
        "l2_loss": sq_half,
        "smooth_l1": lambda t, p: F.smooth_l1_loss(t["input"], t["target"]),
        "huber": lambda t, p: F.huber_loss(t["input"], t["target"]),
        "poisson_nll": lambda t, p: F.poisson_nll_loss(t["input"], t["target"]),
        "gaussian_nll": lambda t, p: F.gaussian_nll_loss(t["input"], t["target"], t["var"]),
        "hinge_embedding": lambda t, p: F.hinge_embedding_loss(t["input"], t["target"]),
        "soft_margin": lambda t, p: F.soft_margin_loss(t["input"], t["target"]),
        "margin_ranking": lambda t, p: F.margin_ranking_loss(t["input1"], t["input2"], t["target"]),
        "kl_div": lambda t, p: F.kl_div(t["input"], t["target"], reduction="mean"),
        "sigmoid_cross_entropy": lambda t, p: F.binary_cross_entropy_with_logits(t["input"], t["target"]),
        "binary_cross_entropy": lambda t, p: F.binary_cross_entropy(t["input"], t["target"]),
        "sigmoid_focal": focal,
        "l2_distance": lambda t, p: torch.linalg.vector_norm(t["input"] - t["target"], dim=1).mean(),
        "euclidean": lambda t, p: ((t["input"] - t["target"]) ** 2).sum(1).mean() / 2,
        "cosine_embedding": lambda t, p: F.cosine_embedding_loss(t["input1"], t["input2"], t["target"],
                                                                 margin=p["margin"]),
        "contrastive": contrastive,
        "triplet_margin": lambda t, p: F.triplet_margin_loss(t["anchor"], t["positive"], t["negative"]),
        "softmax_cross_entropy": lambda t, p: F.cross_entropy(t["input"], t["target"]),
        "nll_loss": lambda t, p: F.nll_loss(t["input"], t["target"]),
        "categorical_cross_entropy": lambda t, p: -(t["target"] * torch.clamp(torch.log(t["input"]), min=-100)
                                                    ).sum(1).mean(),
        "softmax_focal": softmax_focal,
        "arcface": margin("arcface"),
        "cosface": margin("cosface"),
        "combined_margin": margin("combined"),
        "moon": moon,
        "l_softmax": large_margin(False),
        "sphereface": large_margin(True),
        "center": center,
        "f_divergence": lambda t, p: F.kl_div(F.log_softmax(t["input"], 1), t["target"],
                                              reduction="none").sum(1).mean(),
        "triplet_batch_hard": batch_hard,
        "npair": npair,
        "info_nce": info_nce,
        "tv": tv,
    }
    return table[loss]


def torch_step(loss: str, inputs: dict[str, np.ndarray], params: dict[str, Any],
               grads: list[str]) -> tuple[Callable[[], Any], dict[str, Any]]:
    """(step, leaves): ``step()`` runs PyTorch eager forward + autograd backward on tensors
    sharing ``inputs``' memory (gradients of ``grads`` cleared first) and returns the loss
    tensor; ``leaves`` maps each name of ``grads`` to its leaf tensor."""
    import torch

    f = torch_loss(loss)
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    if loss == "moon":
        tensors["_w"] = torch.from_numpy(moon_weights(inputs["labels"]).astype(np.float32))
    leaves = {g: tensors[g].requires_grad_() for g in grads}

    def step() -> Any:
        for leaf in leaves.values():
            leaf.grad = None
        value = f(tensors, params)
        value.backward()
        return value
    return step, leaves


def moon_weights(labels: np.ndarray) -> np.ndarray:
    """MOON's per-element weights from batch fractions (target fraction 0.5)."""
    s = (labels > 0).mean(0)
    t = 0.5
    w_pos = np.where(t >= s, 1.0, (1 - s) * t / np.maximum(s * (1 - t), 1e-300))
    w_neg = np.where(1 - t >= 1 - s, 1.0, s * (1 - t) / np.maximum((1 - s) * t, 1e-300))
    return np.where(labels > 0, w_pos, w_neg)


# ----------------------------------------------------------------------------- NumPy


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1)


def scatter_rows(index: np.ndarray, rows: np.ndarray, n_out: int) -> np.ndarray:
    """out[j] = sum of rows[i] over i with index[i] == j (sort + reduceat, no Python loop)."""
    order = np.argsort(index, kind="stable")
    idx = index[order]
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    out = np.zeros((n_out,) + rows.shape[1:], rows.dtype)
    out[idx[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


def _softmax_rows(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(softmax along axis 1, log-sum-exp per row)."""
    m = z.max(1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(1, keepdims=True)
    return e / s, (np.log(s) + m)[:, 0]


def _unnormalise(g_hat: np.ndarray, x_hat: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Gradient through x_hat = x / ||x||: (g - x_hat (x_hat . g)) / ||x||."""
    return (g_hat - x_hat * (g_hat * x_hat).sum(1, keepdims=True)) / norm


def _chebyshev(c: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(T_m(c), U_{m-1}(c)) by the three-term recurrences."""
    t_prev, t_cur = np.ones_like(c), c
    u_prev, u_cur = np.zeros_like(c), np.ones_like(c)
    for _ in range(m - 1):
        t_prev, t_cur = t_cur, 2 * c * t_cur - t_prev
        u_prev, u_cur = u_cur, 2 * c * u_cur - u_prev
    return t_cur, u_cur


def large_margin_numpy(normalise_weight: bool, m: int = 4) -> Callable:
    """L-Softmax / A-Softmax (lambda = 0) with the spec's true gradients (metric.md 3a, 3b).

    G = |x||w_y| psi(c), psi = (-1)^k T_m(c) - 2k, psi' = (-1)^k m U_{m-1}(c);
    dG/dx = psi' w_y + |w_y|/|x| (psi - c psi') x,  dG/dw_y = psi' x + |x|/|w_y| (psi - c psi') w_y.
    """
    def f(a, p, g):
        x, w_raw, y = a["features"], a["weight"], a["labels"]
        n = x.shape[0]
        rows = np.arange(n)
        w_norm = np.sqrt((w_raw * w_raw).sum(1, keepdims=True))
        w = w_raw / w_norm if normalise_weight else w_raw
        wn_all = np.ones_like(w_norm) if normalise_weight else w_norm
        d = x @ w.T
        xn = np.sqrt((x * x).sum(1))
        wn = wn_all[y, 0]
        wy = w[y]
        c = d[rows, y] / (xn * wn)
        k = np.minimum(np.floor(m * np.arccos(np.clip(c, -1, 1)) / np.pi), m - 1)
        sign = 1 - 2 * np.remainder(k, 2)
        t_m, u_m1 = _chebyshev(c, m)
        psi, dpsi = sign * t_m - 2 * k, sign * m * u_m1
        d[rows, y] = xn * wn * psi
        prob, lse = _softmax_rows(d)
        loss = (lse - d[rows, y]).mean()
        gz = prob
        gz[rows, y] -= 1
        gz *= np.float32(1.0 / n)
        gy = gz[rows, y][:, None]
        gz[rows, y] = 0
        bend = (psi - c * dpsi)[:, None]
        out = {}
        if "features" in g:
            dg_dx = dpsi[:, None] * wy + (wn / xn)[:, None] * bend * x
            out["features"] = gz @ w + gy * dg_dx
        if "weight" in g:
            dg_dw = dpsi[:, None] * x + (xn / wn)[:, None] * bend * wy
            dw = gz.T @ x + scatter_rows(y, gy * dg_dw, w.shape[0])
            out["weight"] = _unnormalise(dw, w, w_norm) if normalise_weight else dw
        return loss, out
    return f


def numpy_loss(loss: str) -> Callable[[dict[str, np.ndarray], dict[str, Any], frozenset], tuple]:
    """``f(arrays, params, grads) -> (loss, {name: gradient})``, vectorised NumPy."""
    def ew(fn):
        """fn(arrays) -> (per-element loss, {name: d l_i / d input_i}); mean reduction."""
        def f(a, p, g):
            l, d = fn(a)
            s = 1.0 / l.size
            return l.mean(), {k: v * np.float32(s) for k, v in d.items() if k in g}
        return f

    def mse(a):
        d = a["input"] - a["target"]
        g = 2 * d
        return d * d, {"input": g, "target": -g}

    def l1(a):
        d = a["input"] - a["target"]
        g = np.sign(d)
        return np.abs(d), {"input": g, "target": -g}

    def l2_loss(a, p, g):
        d = a["input"] - a["target"]
        return (d * d).sum() / 2, {k: v for k, v in (("input", d), ("target", -d)) if k in g}

    def smooth(a, beta=1.0, huber=False):
        d = a["input"] - a["target"]
        ad = np.abs(d)
        small = ad < beta
        if huber:
            l = np.where(small, 0.5 * d * d, beta * (ad - 0.5 * beta))
            gr = np.clip(d, -beta, beta)
        else:
            l = np.where(small, 0.5 * d * d / beta, ad - 0.5 * beta)
            gr = np.clip(d / beta, -1, 1)
        return l, {"input": gr, "target": -gr}

    def poisson(a):
        x, y = a["input"], a["target"]
        e = np.exp(x)
        return e - y * x, {"input": e - y}

    def gauss(a):
        x, y, v = a["input"], a["target"], np.maximum(a["var"], 1e-6)
        d = x - y
        dv = d / v
        return 0.5 * (np.log(v) + d * dv), {"input": dv, "target": -dv, "var": 0.5 * (1 / v - dv * dv)}

    def hinge(a):
        x, y = a["input"], a["target"]
        pos = y > 0
        h = np.maximum(0, 1 - x)
        active = (1 - x >= 0).astype(x.dtype)
        return np.where(pos, x, h), {"input": np.where(pos, 1.0, -active).astype(x.dtype)}

    def soft_margin(a):
        x, y = a["input"], a["target"]
        z = -y * x
        return np.logaddexp(0, z), {"input": -y * _sigmoid(z)}

    def ranking(a):
        x1, x2, y = a["input1"], a["input2"], a["target"]
        h = -y * (x1 - x2)
        act = (h > 0).astype(x1.dtype)
        return np.maximum(0, h), {"input1": -y * act, "input2": y * act}

    def kl(a):
        x, t = a["input"], a["target"]
        lt = np.log(t)
        return t * (lt - x), {"input": -t, "target": lt + 1 - x}

    def sce(a):
        x, t = a["input"], a["target"]
        l = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        return l, {"input": _sigmoid(x) - t, "target": -x}

    def bce(a):
        q, t = a["input"], a["target"]
        lq, l1q = np.maximum(np.log(q), -100), np.maximum(np.log1p(-q), -100)
        return -(t * lq + (1 - t) * l1q), {"input": (q - t) / np.maximum(q * (1 - q), 1e-12)}

    def focal(a, alpha=0.25, gamma=2.0):
        x, t = a["logits"], a["targets"]
        p = _sigmoid(x)
        ce = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        q = (1 - t) * p + t * (1 - p)
        at = alpha * t + (1 - alpha) * (1 - t)
        qg = q * q
        gr = at * (gamma * q * (1 - 2 * t) * p * (1 - p) * ce + qg * (p - t))
        return at * qg * ce, {"logits": gr}

    def rows(fn):
        def f(a, p, g):
            l, d = fn(a, p)
            r = np.float32(1.0 / l.shape[0])
            return l.mean(), {k: v * r for k, v in d.items() if k in g}
        return f

    def l2_distance(a, p):
        d = a["input"] - a["target"]
        n = np.sqrt((d * d).sum(1))
        gr = d / np.where(n > 0, n, 1)[:, None]
        return n, {"input": gr, "target": -gr}

    def euclid(a, p):
        d = a["input"] - a["target"]
        return 0.5 * (d * d).sum(1), {"input": d, "target": -d}

    def cosine(a, p):
        x, z, y = a["input1"], a["input2"], a["target"]
        sx, sz = (x * x).sum(1) + 1e-12, (z * z).sum(1) + 1e-12
        rt = 1 / np.sqrt(sx * sz)
        c = (x * z).sum(1) * rt
        k = np.where(y > 0, -1.0, (c - p["margin"] >= 0).astype(np.float64)).astype(x.dtype)
        l = np.where(y > 0, 1 - c, np.maximum(0, c - p["margin"]))
        gx = z * rt[:, None] - (c / sx)[:, None] * x
        gz = x * rt[:, None] - (c / sz)[:, None] * z
        return l, {"input1": k[:, None] * gx, "input2": k[:, None] * gz}

    def contrastive(a, p):
        delta = a["x1"] - a["x2"]
        d = np.sqrt((delta * delta).sum(1))
        y = a["label"].astype(delta.dtype)
        h = np.maximum(p["margin"] - d, 0)
        l = 0.5 * (y * d * d + (1 - y) * h * h)
        coef = np.where(y > 0, 1.0, -h / np.where(d > 0, d, 1)).astype(delta.dtype)
        g = coef[:, None] * delta
        return l, {"x1": g, "x2": -g}

    def triplet(a, p, margin=1.0, eps=1e-6):
        an, po, ne = a["anchor"], a["positive"], a["negative"]
        dp, dn = an - po + eps, an - ne + eps
        np_, nn = np.sqrt((dp * dp).sum(1)), np.sqrt((dn * dn).sum(1))
        h = np.maximum(np_ - nn + margin, 0)
        act = (h > 0).astype(an.dtype)[:, None]
        gp = act * dp / np_[:, None]
        gn = act * dn / nn[:, None]
        return h, {"anchor": gp - gn, "positive": -gp, "negative": gn}

    def moon(a, p):
        x, y = a["scores"], a["labels"]
        w = a.get("_w")
        if w is None:
            w = moon_weights(y).astype(x.dtype)
        d = x - y
        return (w * d * d).sum(1), {"scores": 2 * w * d}

    def softmax_ce(a, p, g):
        z, y = a["input"], a["target"]
        n = z.shape[0]
        m = z.max(1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(1, keepdims=True)
        lse = np.log(s)[:, 0] + m[:, 0]
        loss = (lse - z[np.arange(n), y]).mean()
        grad = e / s
        grad[np.arange(n), y] -= 1
        grad *= np.float32(1.0 / n)
        return loss, {"input": grad}

    def nll(a, p, g):
        lp, y = a["input"], a["target"]
        n = lp.shape[0]
        grad = np.zeros_like(lp)
        grad[np.arange(n), y] = -1.0 / n
        return -lp[np.arange(n), y].mean(), {"input": grad}

    def cce(a, p, g):
        q, t = a["input"], a["target"]
        lq = np.maximum(np.log(q), -100)
        r = np.float32(1.0 / q.shape[0])
        return -(t * lq).sum(1).mean(), {k: v for k, v in (("input", -r * t / np.maximum(q, 1e-12)),
                                                          ("target", -r * lq)) if k in g}

    def softmax_focal(a, p, g, gamma=2.0):
        z, y = a["logits"], a["labels"]
        n = z.shape[0]
        m = z.max(1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(1, keepdims=True)
        prob = e / s
        lp = np.log(prob[np.arange(n), y])
        py = np.exp(lp)
        u = 1 - py
        loss = -(u ** gamma * lp)
        b = gamma * py * lp * u - u * u
        grad = -prob * b[:, None]
        grad[np.arange(n), y] += b
        return loss.mean(), {"logits": grad * np.float32(1.0 / n)}

    def face(kind: str, s=64.0):
        def f(a, p, g):
            x, w, y = a["features"], a["weight"], a["labels"]
            n = x.shape[0]
            rows = np.arange(n)
            xn = np.sqrt((x * x).sum(1, keepdims=True))
            wn = np.sqrt((w * w).sum(1, keepdims=True))
            xh, wh = x / xn, w / wn
            cos = xh @ wh.T
            c = np.clip(cos[rows, y].astype(np.float64), -1 + 1e-7, 1 - 1e-7)
            if kind == "arcface":
                m = 0.5
                sn = np.sqrt(1 - c * c)
                phi = c * np.cos(m) - sn * np.sin(m)
                use = c > np.cos(np.pi - m)
                t = np.where(use, phi, c - m * np.sin(m))
                tp = np.where(use, np.cos(m) + np.sin(m) * c / sn, 1.0)
            elif kind == "cosface":
                t, tp = c - 0.35, np.ones_like(c)
            else:
                th = np.arccos(c)
                t = np.cos(th + 0.3) - 0.2
                tp = np.sin(th + 0.3) / np.sqrt(1 - c * c)
            z = cos * np.float32(s)
            z[rows, y] = s * t
            mx = z.max(1, keepdims=True)
            e = np.exp(z - mx)
            se = e.sum(1, keepdims=True)
            loss = (np.log(se[:, 0]) + mx[:, 0] - z[rows, y]).mean()
            gz = e / se
            gz[rows, y] -= 1
            gz *= np.float32(s / n)
            gz[rows, y] *= tp.astype(np.float32)
            out = {}
            if "features" in g:
                dxh = gz @ wh
                out["features"] = (dxh - xh * (dxh * xh).sum(1, keepdims=True)) / xn
            if "weight" in g:
                dwh = gz.T @ xh
                out["weight"] = (dwh - wh * (dwh * wh).sum(1, keepdims=True)) / wn
            return loss, out
        return f

    def center(a, p, g):
        x, y, c = a["features"], a["labels"], a["centers"]
        diff = x - c[y]
        r = np.float32(1.0 / x.shape[0])
        loss = 0.5 * (diff * diff).sum(1).mean()
        out = {"features": r * diff} if "features" in g else {}
        if "centers" in g:
            out["centers"] = scatter_rows(y, -r * diff, c.shape[0])
        return loss, out

    def f_divergence(a, p, g):
        z, t = a["input"], a["target"]
        q, lse = _softmax_rows(z)
        logq = z - lse[:, None]
        logt = np.log(np.where(t > 0, t, 1))
        loss = (t * (logt - logq)).sum(1).mean()
        return loss, {"input": (q * t.sum(1, keepdims=True) - t) * np.float32(1.0 / z.shape[0])}

    def batch_hard(a, p, g, margin=0.3):
        x, y = a["embeddings"], a["labels"]
        n = x.shape[0]
        rows = np.arange(n)
        sq = (x * x).sum(1)
        dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * (x @ x.T), 0))
        same = y[:, None] == y[None, :]
        same_off = same.copy()
        same_off[rows, rows] = False
        pos = np.where(same_off, dist, -np.inf).argmax(1)
        neg = np.where(same, np.inf, dist).argmin(1)
        valid = same_off.any(1) & ~same.all(1)
        u_p, u_n = x - x[pos], x - x[neg]
        d_p, d_n = np.sqrt((u_p * u_p).sum(1)), np.sqrt((u_n * u_n).sum(1))
        z = margin + d_p - d_n
        count = max(int(valid.sum()), 1)
        loss = np.where(valid, np.maximum(z, 0), 0).sum() / count
        coef = (valid & (z >= 0)).astype(x.dtype) / np.float32(count)
        gp = (coef / np.where(d_p > 0, d_p, 1))[:, None] * u_p
        gn = (coef / np.where(d_n > 0, d_n, 1))[:, None] * u_n
        grad = gp - gn - scatter_rows(pos, gp, n) + scatter_rows(neg, gn, n)
        return loss, {"embeddings": grad}

    def npair(a, p, g, reg=0.002):
        an, po, y = a["anchors"], a["positives"], a["labels"]
        same = (y[:, None] == y[None, :]).astype(an.dtype)
        target = same / same.sum(1, keepdims=True)
        s = an @ po.T
        prob, lse = _softmax_rows(s)
        xent = lse - (target * s).sum(1)
        loss = (xent + 0.25 * reg * ((an * an).sum(1) + (po * po).sum(1))).mean()
        r = np.float32(1.0 / an.shape[0])
        gs = (prob - target) * r
        decay = np.float32(0.5 * reg) * r
        return loss, {"anchors": gs @ po + decay * an, "positives": gs.T @ an + decay * po}

    def info_nce(a, p, g, tau=0.1):
        q, k = a["query"], a["positive_key"]
        n = q.shape[0]
        rows = np.arange(n)
        qn, kn = np.sqrt((q * q).sum(1, keepdims=True)), np.sqrt((k * k).sum(1, keepdims=True))
        qh, kh = q / qn, k / kn
        logits = (qh @ kh.T) * np.float32(1 / tau)
        prob, lse = _softmax_rows(logits)
        loss = (lse - logits[rows, rows]).mean()
        prob[rows, rows] -= 1
        gl = prob * np.float32(1.0 / (n * tau))
        return loss, {"query": _unnormalise(gl @ kh, qh, qn), "positive_key": _unnormalise(gl.T @ qh, kh, kn)}

    def tv(a, p, g):
        x = a["input"]
        dv, dh = x[:, :, 1:] - x[:, :, :-1], x[:, :, :, 1:] - x[:, :, :, :-1]
        loss = (np.abs(dv).sum((1, 2, 3)) + np.abs(dh).sum((1, 2, 3))).mean()
        r = np.float32(1.0 / x.shape[0])
        sv, sh = np.sign(dv) * r, np.sign(dh) * r
        grad = np.zeros_like(x)
        grad[:, :, 1:] += sv
        grad[:, :, :-1] -= sv
        grad[:, :, :, 1:] += sh
        grad[:, :, :, :-1] -= sh
        return loss, {"input": grad}

    table: dict[str, Callable] = {
        "l_softmax": large_margin_numpy(False), "sphereface": large_margin_numpy(True),
        "center": center, "f_divergence": f_divergence, "triplet_batch_hard": batch_hard, "npair": npair,
        "info_nce": info_nce, "tv": tv,
        "mse": ew(mse), "l1": ew(l1), "l2_loss": l2_loss,
        "smooth_l1": ew(smooth), "huber": ew(lambda a: smooth(a, huber=True)),
        "poisson_nll": ew(poisson), "gaussian_nll": ew(gauss), "hinge_embedding": ew(hinge),
        "soft_margin": ew(soft_margin), "margin_ranking": ew(ranking), "kl_div": ew(kl),
        "sigmoid_cross_entropy": ew(sce), "binary_cross_entropy": ew(bce), "sigmoid_focal": ew(focal),
        "l2_distance": rows(l2_distance), "euclidean": rows(euclid), "cosine_embedding": rows(cosine),
        "contrastive": rows(contrastive), "triplet_margin": rows(triplet), "moon": rows(moon),
        "softmax_cross_entropy": softmax_ce, "nll_loss": nll, "categorical_cross_entropy": cce,
        "softmax_focal": softmax_focal, "arcface": face("arcface"), "cosface": face("cosface"),
        "combined_margin": face("combined"),
    }
    return table[loss]
