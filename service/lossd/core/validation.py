"""Generic request validation from a loss's spec; runs before any kernel.

Order: loss id -> input names -> each input (rank, empty, dtype, finiteness, label
values) -> parameters (names, types, choices, ranges) -> grads list -> the loss's
own ``validate``. Every failure is InvalidArgument naming the field (NotFound for an
unknown loss). The result is a :class:`lossd.spec.Call` whose arrays are C-contiguous
and read-only; kernels never see unchecked input.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from lossd.core.checks import input_error, param_error, shape_str
from lossd.kernels.finite import all_finite
from lossd.kernels.reduction import BY_NAME
from lossd.losses.registry import resolve
from lossd.spec import Call, InputSpec, Kind, LossSpec, check_param_value
from lossd_client.errors import InvalidArgument

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INT_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
INT64 = np.dtype(np.int64)
#: input kinds that accept the request's float dtype (a tuple: Enum hashing runs Python code)
FLOAT_KINDS = (Kind.FLOAT, Kind.INDEX_OR_FLOAT, Kind.SIGN)


def prepare(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None,
            grads: Iterable[str] | None = None, request_id: str = "",
            max_elements: int | None = None) -> Call:
    """Validate a request completely and return the Call a loss computes on."""
    spec = resolve(loss)
    arrays = _check_input_names(spec, inputs)
    if max_elements is not None:
        total = sum(a.size for a in arrays.values())
        if total > max_elements:
            raise InvalidArgument.field(
                "inputs", f"{total} elements in all exceed the limit of {max_elements} "
                          f"(--max-elements / LOSSD_MAX_ELEMENTS)")
    dtype = _float_dtype(spec, arrays)
    prepared = {s.name: _check_input(s, arrays[s.name], dtype) for s in spec.inputs
                if s.name in arrays}
    values = _check_params(spec, params)
    wanted = _check_grads(spec, prepared, grads)
    call = Call(spec=spec, inputs=prepared, params=values, grads=wanted, dtype=dtype,
                reduction=BY_NAME[values["reduction"]], request_id=request_id)
    if spec.validate is not None:
        spec.validate(call)
    return call


def _check_input_names(spec: LossSpec, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    known = spec.inputs_by_name
    for name in inputs:
        if name not in known:
            raise input_error(name, f"loss {spec.id} takes no input {name!r}; "
                                    f"it takes {', '.join(known)}")
    for s in spec.inputs:
        if s.required and s.name not in inputs:
            raise input_error(s.name, f"required input is missing ({s.shape})")
    out = {}
    for name, value in inputs.items():
        try:
            out[name] = np.asarray(value)
        except Exception as exc:  # noqa: BLE001 - ragged lists and the like
            raise input_error(name, f"not an array: {exc}") from None
    return out


def _float_dtype(spec: LossSpec, arrays: Mapping[str, np.ndarray]) -> np.dtype:
    primary = spec.inputs[0]
    dtype = arrays[primary.name].dtype
    if dtype not in FLOAT_DTYPES:
        raise input_error(primary.name, f"expected dtype float32 or float64, got {_dtype_name(dtype)}")
    return dtype


def _check_input(s: InputSpec, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if a.ndim == 0:
        raise input_error(s.name, f"expected a tensor of rank >= 1 {s.shape}, got a 0-d tensor "
                                  f"(send a scalar as shape (1,))")
    if 0 in a.shape:
        raise input_error(s.name, f"expected a non-empty tensor {s.shape}, got shape {shape_str(a.shape)}")
    kind = s.kind
    if a.dtype in FLOAT_DTYPES and kind in FLOAT_KINDS:
        if a.dtype != dtype:
            raise input_error(s.name, f"expected dtype {dtype.name} like the other float inputs "
                                      f"(mixed float dtypes are rejected), got {a.dtype.name}")
        a = _readonly(a)
        _check_finite(s.name, a)
        if kind is Kind.SIGN:
            _check_values(s.name, a, (-1, 1), "exactly -1 or +1")
        return a
    if a.dtype in INT_DTYPES and kind is not Kind.FLOAT:
        if kind is Kind.SIGN:
            _check_values(s.name, a, (-1, 1), "exactly -1 or +1")
            return _readonly(a.astype(dtype))
        if kind is Kind.BINARY:
            _check_values(s.name, a, (0, 1), "exactly 0 or 1")
        return _readonly(a.astype(INT64, copy=False))
    expected = " or ".join(kind.dtypes) if kind is not Kind.SIGN else \
        f"int32, int64 or {dtype.name}"
    if kind is Kind.INDEX_OR_FLOAT:
        expected = f"int32 or int64 (class indices) or {dtype.name} (probabilities)"
    raise input_error(s.name, f"expected dtype {expected}, got {_dtype_name(a.dtype)}")


def _check_finite(name: str, a: np.ndarray) -> None:
    # One vectorised pass over the exponent bits (kernels/finite.py, parallel when large);
    # only a failing input pays for locating its first non-finite value.
    if all_finite(a):
        return
    bad = ~np.isfinite(a)
    where = np.unravel_index(int(np.argmax(bad)), a.shape)
    raise input_error(name, f"expected finite values, got {float(a[where])} at index "
                            f"{tuple(int(i) for i in where)}")


def _check_values(name: str, a: np.ndarray, allowed: tuple[int, int], words: str) -> None:
    bad = (a != allowed[0]) & (a != allowed[1])
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), a.shape)
        value = a[where].item()
        raise input_error(name, f"expected values {words}, got {value!r} at index "
                                f"{tuple(int(i) for i in where)}")


def _readonly(a: np.ndarray) -> np.ndarray:
    flags = a.flags
    if not flags.c_contiguous:
        a = np.ascontiguousarray(a)
        flags = a.flags
    if flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _dtype_name(dtype: np.dtype) -> str:
    return "bool" if dtype.kind == "b" else dtype.name


def _check_params(spec: LossSpec, params: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(spec.param_defaults)
    if not params:
        return values
    declared = spec.params_by_name
    for name in params:
        if name not in declared:
            raise param_error(name, f"loss {spec.id} takes no parameter {name!r}; it takes "
                                    f"{', '.join(declared)}")
    for name, p in declared.items():
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        try:
            values[name] = check_param_value(p, value)
        except ValueError as exc:
            raise param_error(name, str(exc)) from None
    return values


def _check_grads(spec: LossSpec, arrays: Mapping[str, np.ndarray],
                 grads: Iterable[str] | None) -> frozenset[str]:
    declared = spec.differentiable
    if grads is None:
        given = [n for n in declared if n in arrays and arrays[n].dtype.kind == "f"]
        return spec.differentiable_set if len(given) == len(declared) else frozenset(given)

    def differentiable(name: str) -> bool:
        return name in declared and arrays[name].dtype.kind == "f"

    names = list(grads)
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise InvalidArgument.field("grads", f"expected input names, got {name!r}")
        if name in seen:
            raise InvalidArgument.field("grads", f"input {name!r} is named twice")
        seen.add(name)
        if name not in arrays:
            raise InvalidArgument.field(
                "grads", f"input {name!r} is not given in this request; given: {', '.join(arrays)}")
        if not differentiable(name):
            ok = [n for n in arrays if differentiable(n)]
            raise InvalidArgument.field(
                "grads", f"input {name!r} is not differentiable; differentiable inputs given: "
                         f"{', '.join(ok) or 'none'}")
    return frozenset(seen)
