"""Open Inference Protocol (KServe V2) semantics shared by the gRPC and REST fronts.

Each loss is a model (its canonical id or an alias). Inputs are the loss's inputs by
name with V2 datatypes FP32, FP64, INT32, INT64; hyper-parameters are request
parameters (a float may come as double, int64 or string; an int as int64 or string; a
bool as bool or string). Outputs are ``loss`` and ``grad_<input>``: the requested
``outputs`` choose which gradients are computed (none requested: the loss and every
gradient); auxiliary outputs a loss defines keep their own names.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

import numpy as np

from lossd import __version__
from lossd.losses.registry import resolve
from lossd.schema import param_schema
from lossd.spec import LossSpec
from lossd_client.errors import InvalidArgument

#: V2 datatype <-> NumPy dtype (one table and its inverse).
DATATYPES: dict[str, np.dtype] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
                                  "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8")}
DATATYPE_OF: dict[np.dtype, str] = {dt: name for name, dt in DATATYPES.items()}
#: dtype names of the loss schema -> V2 datatypes
V2_NAME = {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64"}
GRAD_PREFIX = "grad_"
EXTENSIONS = ["binary_tensor_data", "parameters"]
#: request parameters that belong to the protocol or to Triton clients, not to the loss
RESERVED_PARAMS = frozenset({"binary_data_output", "binary_data", "binary_data_size", "sequence_id",
                             "sequence_start", "sequence_end", "priority", "timeout", "headers",
                             "triton_enable_empty_final_response"})
_DIM = re.compile(r"^-?\d+$")


def datatype_dtype(datatype: str, field: str) -> np.dtype:
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        raise InvalidArgument.field(field, f"datatype {datatype!r} is not supported; expected "
                                           f"{', '.join(DATATYPES)}")
    return dtype


def datatype_of(array: np.ndarray) -> str:
    return DATATYPE_OF[array.dtype.newbyteorder("<")]


def server_metadata() -> dict[str, Any]:
    return {"name": "lossd", "version": __version__, "extensions": list(EXTENSIONS)}


def _shape(rule: str) -> tuple[list[int], bool]:
    """Metadata dims of a shape rule in words; -1 for variable dims. (dims, fixed rank)."""
    text = rule.split(",", 1)[0] if not rule.startswith("(") else rule
    match = re.match(r"^\(([^()]*)\)", rule)
    if not match or ".." in match.group(1) or "any" in text:
        return [-1], False
    dims = [d.strip() for d in match.group(1).split(",") if d.strip()]
    return [int(d) if _DIM.match(d) else -1 for d in dims], True


def model_metadata(name: str) -> dict[str, Any]:
    """ModelMetadata as plain data (REST JSON; converted to protobuf for gRPC).

    Input ``datatype`` is the first accepted one; ``parameters.datatypes`` lists all,
    ``parameters.shape`` gives the shape rule in words (``shape`` is ``[-1]`` when the
    rank varies); model ``parameters`` carry each hyper-parameter's schema as JSON.
    """
    spec = resolve(name)
    inputs = []
    for i in spec.inputs:
        dims, _ = _shape(i.shape)
        inputs.append({"name": i.name, "datatype": V2_NAME[i.kind.dtypes[0]], "shape": dims,
                       "parameters": {"datatypes": ",".join(V2_NAME[d] for d in i.kind.dtypes),
                                      "shape": i.shape, "required": i.required,
                                      "differentiable": i.differentiable}})
    loss_dims, _ = _shape(spec.loss_shape)
    outputs = [{"name": "loss", "datatype": "FP32", "shape": [-1],
                "parameters": {"datatypes": "FP32,FP64", "shape": f"() reduced, {spec.loss_shape} "
                               f"with reduction none (default {spec.default_reduction})"}}]
    for i in spec.inputs:
        if i.differentiable:
            dims, _ = _shape(i.shape)
            outputs.append({"name": GRAD_PREFIX + i.name, "datatype": "FP32", "shape": dims,
                            "parameters": {"datatypes": "FP32,FP64", "shape": f"shape of {i.name}"}})
    for o in spec.outputs:
        dims, _ = _shape(o.shape)
        outputs.append({"name": o.name, "datatype": "FP32", "shape": dims,
                        "parameters": {"datatypes": "FP32,FP64", "shape": o.shape}})
    return {"name": spec.id, "versions": ["1"], "platform": "lossd", "inputs": inputs,
            "outputs": outputs,
            "parameters": {p.name: json.dumps(param_schema(p)) for p in spec.all_params}}


def coerce_params(spec: LossSpec | None, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Request parameters as the loss's typed values (strings parsed per the schema)."""
    types = {p.name: p.type for p in spec.all_params} if spec is not None else {}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name in RESERVED_PARAMS:
            continue
        kind = types.get(name)
        if isinstance(value, str) and kind in (float, int, bool):
            try:
                if kind is bool:
                    if value.lower() not in ("true", "false"):
                        raise ValueError(value)
                    value = value.lower() == "true"
                else:
                    value = kind(value.strip())
            except ValueError:
                raise InvalidArgument.field(f"parameters.{name}", f"{value!r} is not a valid "
                                            f"{kind.__name__}") from None
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[name] = value
    return out


def select_grads(spec: LossSpec | None, names: Iterable[str]) -> list[str] | None:
    """The gradients the requested outputs ask for; None (all) when none is requested."""
    names = list(names)
    if not names:
        return None
    known = {o.name for o in spec.outputs} if spec is not None else set()
    grads = []
    for name in names:
        if name.startswith(GRAD_PREFIX):
            grads.append(name[len(GRAD_PREFIX):])
        elif name != "loss" and name not in known:
            raise InvalidArgument.field("outputs", f"unknown output {name!r}; outputs are 'loss', "
                                                   f"'grad_<input>' and the loss's own outputs")
    return grads


def output_arrays(result: Any, requested: list[str]) -> list[tuple[str, np.ndarray]]:
    """(name, array) of the response: the requested outputs, or all of them."""
    everything = [("loss", np.asarray(result.loss))]
    everything += [(GRAD_PREFIX + k, v) for k, v in result.grads.items()]
    everything += list(result.outputs.items())
    if not requested:
        return everything
    by_name = dict(everything)
    return [(n, by_name[n]) for n in requested if n in by_name]


def spec_or_none(name: str) -> LossSpec | None:
    try:
        return resolve(name)
    except Exception:  # noqa: BLE001 - the data plane reports the unknown loss
        return None
