"""The kernel benchmark's contenders compute the same quantity as lossd (bench/contenders.py).

Every loss with an input builder in bench/cases.py, at its small and medium sizes, float32:
the vectorised NumPy contender and (when torch is installed) the PyTorch eager one agree with
lossd's loss and gradients within bench.agree's tolerances (rtol 1e-3 of the largest gradient
magnitude), the same check the benchmark makes before timing a case.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench import agree, cases, contenders
from bench.kernels import grads_of
from lossd.core.evaluate import evaluate

CASES = [(loss, label, dims) for loss in cases.registered()[0]
         for size, label, dims in cases.CASES[loss].variants() if size in ("small", "medium")]


def _lossd(loss, inputs, params, grads):
    r = evaluate(loss, inputs, params, grads=grads)
    return agree.fingerprint(r.loss, r.grads)


@pytest.mark.parametrize("loss,label,dims", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_numpy_contender_agrees(loss, label, dims):
    inputs, params = cases.build(loss, dims)
    grads = grads_of(loss, dims)
    value, got = contenders.numpy_loss(loss)(inputs, params, frozenset(grads))
    assert agree.compare(_lossd(loss, inputs, params, grads), agree.fingerprint(value, got)) is None


@pytest.mark.parametrize("loss,label,dims", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_torch_contender_agrees(loss, label, dims):
    torch = pytest.importorskip("torch")
    inputs, params = cases.build(loss, dims)
    grads = grads_of(loss, dims)
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    if loss == "moon":
        tensors["_w"] = torch.from_numpy(contenders.moon_weights(inputs["labels"]).astype(np.float32))
    leaves = {g: tensors[g].requires_grad_() for g in grads}
    value = contenders.torch_loss(loss)(tensors, params)
    value.backward()
    got = agree.fingerprint(float(value.detach()), {g: leaf.grad.numpy() for g, leaf in leaves.items()})
    assert agree.compare(_lossd(loss, inputs, params, grads), got) is None


def test_compare_reports_a_wrong_gradient():
    g = np.linspace(-1, 1, 1000)
    ref = agree.fingerprint(1.0, {"input": g})
    assert agree.compare(ref, agree.fingerprint(1.0, {"input": g * (1 + 1e-5)})) is None
    assert "norm" in agree.compare(ref, agree.fingerprint(1.0, {"input": 2 * g}))
    assert "loss" in agree.compare(ref, agree.fingerprint(1.01, {"input": g}))
    assert "no gradient" in agree.compare(ref, agree.fingerprint(1.0, {}))
    assert "sampled" in agree.compare(ref, agree.fingerprint(1.0, {"input": g[::-1].copy()}))
