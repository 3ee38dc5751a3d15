"""lossd: losses and their gradients as a service (server distribution).

In-process API::

    import lossd
    result = lossd.evaluate("mse", {"input": x, "target": y})
    result.loss, result.grads["input"]
"""

from __future__ import annotations

from typing import Any

from lossd_client.errors import FieldViolation, InvalidArgument, LossdError, NotFound
from lossd_client.result import EvaluateResult

__version__ = "0.1.0"


def evaluate(loss: str, inputs: Any, params: Any = None, *, grads: Any = None) -> EvaluateResult:
    """Evaluate ``loss`` in this process (see :func:`lossd.core.evaluate.evaluate`)."""
    from lossd.core.evaluate import evaluate as _evaluate

    return _evaluate(loss, inputs, params, grads=grads)


def list_losses() -> list[dict[str, Any]]:
    """The schema of every loss (the same content as ListLosses)."""
    from lossd.schema import all_schemas

    return all_schemas()


__all__ = ["EvaluateResult", "FieldViolation", "InvalidArgument", "LossdError", "NotFound",
           "__version__", "evaluate", "list_losses"]
