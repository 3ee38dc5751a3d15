"""The in-process API: validate, then run the loss's kernel."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from lossd.core.validation import prepare
from lossd.spec import Call
from lossd_client.result import EvaluateResult


def run(call: Call) -> EvaluateResult:
    """Compute a validated call: loss, requested gradients and auxiliary outputs."""
    out = call.spec.compute(call)
    # positional: loss, grads, outputs, request_id, loss_id (keywords cost a few 100 ns)
    return EvaluateResult(out.loss, out.grads, out.outputs, call.request_id, call.spec.id)


def evaluate(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None, *,
             grads: Iterable[str] | None = None) -> EvaluateResult:
    """Evaluate ``loss`` on ``inputs`` in this process.

    ``grads=None``: the gradient of every differentiable input given; ``[]``: loss only.
    Raises the same typed errors as the server (``.code`` is a ``grpc.StatusCode``).
    """
    return run(prepare(loss, inputs, params, grads))
