"""The element loops of the exp/log losses vectorise (a regression to scalar code fails here).

Each loss's ``jit.block`` body is recompiled fresh (cached code keeps no assembly) and its
dual kernel's serial build recompiled around it, once per signature. The assembly must
contain packed FMAs on ymm registers and no call to a scalar libm exp/log/log1p/pow: packed
double (4 lanes) for float64 requests, and for float32 requests packed single (8 lanes) for
the losses whose terms are evaluated in float32 (FLOAT32_TERMS, vecmath.texp/tlog/tlog1p ->
vecmath32) and packed double for the others (float64 terms).
"""

from __future__ import annotations

import importlib
import re

import numba
import pytest

from lossd.kernels import jit

LOSSES = {"binary_cross_entropy": ("_bce", "_bce_block"),
          "sigmoid_cross_entropy": ("_sce", "_sce_block"),
          "soft_margin": ("_soft_margin", "_soft_margin_block"),
          "sigmoid_focal": ("_focal", "_focal_block"),
          "kl_div": ("_kl", "_kl_block"),
          "poisson_nll": ("_poisson_nll", "_poisson_block"),
          "gaussian_nll": ("_gaussian_nll", "_gaussian_block")}
#: losses evaluating float32 requests in float32 (the others have mixed-sign terms whose
#: float64 sum may cancel: their terms stay float64)
FLOAT32_TERMS = {"binary_cross_entropy", "sigmoid_cross_entropy", "soft_margin", "sigmoid_focal"}


def _fresh(fn, signatures=None):
    options = dict(fastmath=set(jit.FASTMATH), error_model="numpy", nogil=True)
    return numba.njit(signatures, **options)(fn) if signatures else numba.njit(**options)(fn)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_block_loop_is_vectorised(loss: str, dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module(f"lossd.losses.{loss}")
    kernel_name, block_name = LOSSES[loss]
    monkeypatch.setattr(module, block_name, _fresh(getattr(module, block_name).py_func))
    serial = getattr(module, kernel_name).serial
    signature = next(sig for sig in serial.signatures if str(sig[0].dtype) == dtype)
    fresh = _fresh(serial.py_func, [signature])
    asm = fresh.inspect_asm(fresh.signatures[0])
    kind = "ps" if dtype == "float32" and loss in FLOAT32_TERMS else "pd"
    packed = re.findall(rf"vfn?m(?:add|sub)\d+{kind}\s+[^\n]*%ymm", asm)
    assert len(packed) >= 4, f"{loss} {dtype}: no vectorised {kind} polynomial in the element loop"
    assert not re.search(r"\$(exp|log|log1p|pow)f?\b", asm), f"{loss}: scalar libm call left"
