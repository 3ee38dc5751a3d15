"""The loss schema (what ListLosses and GET /v1/losses return) as plain data.

A client in any language can build a valid request from it alone.
"""

from __future__ import annotations

from typing import Any

from lossd.kernels.reduction import REDUCTION_NAMES
from lossd.losses import registry
from lossd.spec import LossSpec, ParamSpec

PARAM_TYPES = {float: "double", int: "int64", bool: "bool", str: "string"}


def param_schema(p: ParamSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "type": PARAM_TYPES[p.type], "range": p.range_text(),
                           "description": p.description}
    if p.default is not None:
        out["default"] = p.default
    if p.choices:
        out["allowed_values"] = list(p.choices)
    if p.minimum is not None:
        out["minimum"] = p.minimum
        out["exclusive_minimum"] = p.exclusive_minimum
    if p.maximum is not None:
        out["maximum"] = p.maximum
        out["exclusive_maximum"] = p.exclusive_maximum
    return out


def loss_schema(spec: LossSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "aliases": list(spec.aliases),
        "description": spec.summary,
        "inputs": [{"name": i.name, "dtypes": list(i.kind.dtypes), "shape": i.shape,
                    "differentiable": i.differentiable, "required": i.required,
                    "description": i.description} for i in spec.inputs],
        "params": [param_schema(p) for p in spec.all_params],
        "reductions": list(REDUCTION_NAMES),
        "default_reduction": spec.default_reduction,
        "loss_shape": spec.loss_shape,
        "outputs": [{"name": o.name, "shape": o.shape, "description": o.description}
                    for o in spec.outputs],
    }


def all_schemas() -> list[dict[str, Any]]:
    return [loss_schema(spec) for spec in registry.SPECS]
