"""The result of one evaluation: loss, gradients and auxiliary outputs as NumPy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import decode_tensor


@dataclass
class EvaluateResult:
    """``loss`` (0-d for reduced losses), ``grads`` (input name -> array of that input's
    shape and dtype), ``outputs`` (auxiliary tensors a loss defines; usually empty)."""

    loss: np.ndarray
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    request_id: str = ""
    loss_id: str = ""

    @classmethod
    def from_proto(cls, response: pb.EvaluateResponse) -> EvaluateResult:
        """Decode a response (arrays are read-only views of the message bytes)."""
        return cls(
            loss=decode_tensor(response.loss, "loss"),
            grads={k: decode_tensor(v, f"grads.{k}") for k, v in response.grads.items()},
            outputs={k: decode_tensor(v, f"outputs.{k}") for k, v in response.outputs.items()},
            request_id=response.request_id,
            loss_id=response.loss_id,
        )
