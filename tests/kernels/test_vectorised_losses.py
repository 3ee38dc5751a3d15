"""The element loops of the exp/log losses vectorise (a regression to scalar code fails here).

Each loss's ``jit.block`` body is recompiled fresh (cached code keeps no assembly) and its
dual kernel's serial build recompiled around it with the float32 signature; the assembly
must contain packed double FMAs on ymm registers (the vecmath polynomials, 4 lanes) and no
call to a scalar libm exp/log/log1p/pow.
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


def _fresh(fn, signatures=None):
    options = dict(fastmath=set(jit.FASTMATH), error_model="numpy", nogil=True)
    return numba.njit(signatures, **options)(fn) if signatures else numba.njit(**options)(fn)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_block_loop_is_vectorised(loss: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module(f"lossd.losses.{loss}")
    kernel_name, block_name = LOSSES[loss]
    monkeypatch.setattr(module, block_name, _fresh(getattr(module, block_name).py_func))
    serial = getattr(module, kernel_name).serial
    fresh = _fresh(serial.py_func, [serial.signatures[0]])
    asm = fresh.inspect_asm(fresh.signatures[0])
    packed = re.findall(r"vfn?m(?:add|sub)\d+pd\s+[^\n]*%ymm", asm)
    assert len(packed) >= 4, f"{loss}: no vectorised polynomial in the element loop"
    assert not re.search(r"\$(exp|log|log1p|pow)\b", asm), f"{loss}: scalar libm call left"
