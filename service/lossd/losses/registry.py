"""The explicit list of losses. Adding a loss: one module with ``SPEC``, one line in
``MODULES``.

Loss modules compile their kernels when imported (eager signatures), so the registry
imports them on first use, not when lossd is imported: the server listens first and
reports NOT_SERVING while :func:`load` (driven by warm-up) compiles or loads each
module's kernels. ``SPECS``, ``BY_ID`` and ``BY_NAME`` load the registry when first read.

Aliases are resolved here only; responses, metrics and logs use canonical ids.
"""

from __future__ import annotations

import difflib
import importlib
import threading
import time
from typing import Any, Callable

from lossd.spec import LossSpec
from lossd_client.errors import NotFound

#: every loss module, in the order of ../shared/losses/README.md section 11.
MODULES: tuple[str, ...] = (
    "mse",
    "l1",
    "l2_loss",
    "l2_distance",
    "euclidean",
    "smooth_l1",
    "huber",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "softmax_cross_entropy",
    "nll_loss",
    "sigmoid_cross_entropy",
    "kl_div",
    "f_divergence",
    "tv",
    "poisson_nll",
    "gaussian_nll",
    "hinge_embedding",
    "soft_margin",
    "cosine_embedding",
    "margin_ranking",
    "center",
    "sigmoid_focal",
    "softmax_focal",
    "l_softmax",
    "sphereface",
    "contrastive",
    "triplet_margin",
    "triplet_batch_hard",
    "moon",
    "arcface",
    "cosface",
    "combined_margin",
    "npair",
    "info_nce",
)

_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}


def load(on_module: Callable[[str, float], None] | None = None) -> tuple[LossSpec, ...]:
    """Import every loss module (compiling or loading its kernels) once; return the specs.

    ``on_module(loss_id, seconds)`` is called after each import the first time.
    """
    with _LOCK:
        if not _LOADED:
            specs = []
            for name in MODULES:
                start = time.perf_counter()
                spec = importlib.import_module(f"lossd.losses.{name}").SPEC
                if on_module is not None:
                    on_module(spec.id, time.perf_counter() - start)
                specs.append(spec)
            by_id = {spec.id: spec for spec in specs}
            _LOADED.update(SPECS=tuple(specs), BY_ID=by_id,
                           BY_NAME={**by_id, **{a: s for s in specs for a in s.aliases}})
    return _LOADED["SPECS"]


def __getattr__(name: str) -> Any:
    if name in ("SPECS", "BY_ID", "BY_NAME"):
        load()
        return _LOADED[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve(name: str) -> LossSpec:
    """The spec of a loss id or alias; NotFound (with close matches) otherwise."""
    by_name = _LOADED.get("BY_NAME")
    if by_name is None:  # the lock in load() only until the registry is loaded
        load()
        by_name = _LOADED["BY_NAME"]
    spec = by_name.get(name)
    if spec is None:
        close = difflib.get_close_matches(str(name), list(by_name), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFound(f"unknown loss {str(name)[:100]!r}{hint} (ListLosses lists all "
                       f"{len(_LOADED['SPECS'])})")
    return spec


def canonical_id(name: str) -> str | None:
    """The canonical id of a name, or None when unknown (for bounded metric labels).

    Never loads the registry: before warm-up has loaded it, every name is unknown, so a
    call arriving during warm-up cannot block the event loop on kernel compilation.
    """
    spec = _LOADED.get("BY_NAME", {}).get(name)
    return spec.id if spec else None
