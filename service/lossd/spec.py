"""What a loss declares about itself: inputs, parameters, outputs, kernels.

A loss module defines one :class:`LossSpec` named ``SPEC``; ``losses/registry.py``
lists them. The core validates every request against the spec (dtypes, ranks, empty
tensors, finiteness, ±1/{0,1} label values, parameter types, choices and simple
ranges, the ``grads`` list) and then calls the loss's own ``validate`` (shape
relations, label ranges against C, domain checks) before ``compute`` runs a kernel.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping

import numpy as np

from lossd.kernels.reduction import REDUCTION_NAMES, Reduction


class Kind(enum.Enum):
    """What an input tensor holds, which fixes the dtypes it accepts."""

    FLOAT = "float"            # float32/float64, the request's float dtype
    INDEX = "index"            # int32/int64 class indices (range checked by the loss)
    INDEX_OR_FLOAT = "index_or_float"  # class indices, or probabilities in the float dtype
    SIGN = "sign"              # exactly -1 or +1: int32/int64 or the request's float dtype
    BINARY = "binary"          # exactly 0 or 1: int32/int64
    INTEGER = "integer"        # any int32/int64 values (identity labels)

    @property
    def dtypes(self) -> tuple[str, ...]:
        if self is Kind.FLOAT:
            return ("float32", "float64")
        if self in (Kind.INDEX_OR_FLOAT, Kind.SIGN):
            return ("int32", "int64", "float32", "float64")
        return ("int32", "int64")


@dataclass(frozen=True)
class InputSpec:
    """One input tensor. ``shape`` is the rule in words, e.g. ``"(N, C, d1..dk)"``."""

    name: str
    kind: Kind
    shape: str
    description: str
    differentiable: bool = False
    required: bool = True


@dataclass(frozen=True)
class ParamSpec:
    """One scalar parameter. ``type`` is float, int, bool or str.

    ``default=None`` means unset. Numeric bounds given here are checked by the core
    (``minimum``/``maximum``, inclusive unless ``exclusive_*``); rules that are not a
    simple interval are checked by the loss's ``validate`` and described in ``range``.
    """

    name: str
    type: type
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    range: str = ""

    def range_text(self) -> str:
        """The accepted values in words."""
        if self.range:
            return self.range
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        kind = "integer" if self.type is int else "real"
        left = "(" if self.exclusive_minimum or self.minimum is None else "["
        right = ")" if self.exclusive_maximum or self.maximum is None else "]"
        return f"{kind} in {left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class OutputSpec:
    """An auxiliary (non-gradient) output tensor."""

    name: str
    shape: str
    description: str


@dataclass
class Call:
    """A validated request as a loss sees it.

    * ``inputs``: C-contiguous arrays. Float inputs are in ``dtype`` (the request's float
      dtype) and read-only; INDEX, BINARY and INTEGER inputs are int64; SIGN inputs are
      in ``dtype`` (values exactly -1.0/+1.0); an INDEX_OR_FLOAT input is int64 or ``dtype``.
    * ``params``: every declared parameter, defaults filled in (None = unset).
    * ``grads``: the differentiable inputs whose gradient is requested.
    """

    spec: LossSpec
    inputs: dict[str, np.ndarray]
    params: dict[str, Any]
    grads: frozenset[str]
    dtype: np.dtype
    reduction: Reduction
    request_id: str = ""

    @property
    def n(self) -> int:
        """Batch size: dimension 0 of the primary (first) input."""
        return int(self.inputs[self.spec.inputs[0].name].shape[0])

    def wants(self, name: str) -> bool:
        """True when the gradient of ``name`` is requested."""
        return name in self.grads

    def get(self, name: str) -> np.ndarray | None:
        """An optional input, or None when absent."""
        return self.inputs.get(name)


@dataclass
class LossOutput:
    """What ``compute`` returns: the loss (0-d or the unreduced shape), gradients, outputs."""

    loss: np.ndarray
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class LossSpec:
    """A loss: its schema, its checks and its compute function.

    ``validate(call)`` raises InvalidArgument for per-loss shape/domain problems.
    ``compute(call)`` returns a LossOutput. ``examples(dtype)`` returns a list of
    ``(inputs, params)`` pairs that together reach every kernel signature (warm-up).
    """

    id: str
    summary: str
    inputs: tuple[InputSpec, ...]
    params: tuple[ParamSpec, ...]
    loss_shape: str
    compute: Callable[[Call], LossOutput]
    examples: Callable[[np.dtype], list[tuple[dict[str, np.ndarray], dict[str, Any]]]]
    validate: Callable[[Call], None] | None = None
    aliases: tuple[str, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    default_reduction: str = "mean"

    # Lookups the validator runs on every request, built once per spec (cached_property
    # writes the instance __dict__ directly, which a frozen dataclass allows).

    @cached_property
    def inputs_by_name(self) -> dict[str, InputSpec]:
        return {i.name: i for i in self.inputs}

    def input(self, name: str) -> InputSpec | None:
        return self.inputs_by_name.get(name)

    @cached_property
    def all_params(self) -> tuple[ParamSpec, ...]:
        """The declared parameters plus ``reduction``."""
        reduction = ParamSpec("reduction", str, self.default_reduction,
                              "how the per-element losses are reduced", choices=REDUCTION_NAMES)
        return (*self.params, reduction)

    @cached_property
    def params_by_name(self) -> dict[str, ParamSpec]:
        return {p.name: p for p in self.all_params}

    @cached_property
    def param_defaults(self) -> dict[str, Any]:
        """Every parameter at its default (copy before changing it)."""
        return {p.name: p.default for p in self.all_params}

    @cached_property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs if i.differentiable)

    @cached_property
    def differentiable_set(self) -> frozenset[str]:
        return frozenset(self.differentiable)


def check_param_value(param: ParamSpec, value: Any) -> Any:
    """Type-check and range-check one parameter value; return it normalised.

    Raises ValueError with the description for InvalidArgument.
    """
    if param.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a real number, got {_kind_name(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"expected a finite real number, got {value}")
    elif param.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {_kind_name(value)} {value!r}")
    elif param.type is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected a boolean, got {_kind_name(value)} {value!r}")
        return value
    elif param.type is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {_kind_name(value)} {value!r}")
        if param.choices and value not in param.choices:
            raise ValueError(f"expected one of {', '.join(param.choices)}, got {value!r}")
        return value
    lo, hi = param.minimum, param.maximum
    if lo is not None and (value < lo or (param.exclusive_minimum and value == lo)):
        raise ValueError(f"expected {param.range_text()}, got {value!r}")
    if hi is not None and (value > hi or (param.exclusive_maximum and value == hi)):
        raise ValueError(f"expected {param.range_text()}, got {value!r}")
    return value


def _kind_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a real number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


ParamMap = Mapping[str, Any]
