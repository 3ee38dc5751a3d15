"""The result of one evaluation: loss, gradients and auxiliary outputs as NumPy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from google.protobuf.message import DecodeError

from lossd_client import wire
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import decode_tensor

Parsed = tuple[pb.EvaluateResponse, list[memoryview] | None]


def parse_response(raw: bytes) -> Parsed:
    """A serialized EvaluateResponse and the views its tensors refer to (zero copy when
    large; raises DecodeError like ``FromString``)."""
    if len(raw) >= wire.ZERO_COPY_MIN_BYTES:
        scanned = wire.scan(raw, wire.RESPONSE_PATHS)
        if scanned is not None:
            try:
                return pb.EvaluateResponse.FromString(scanned[0]), scanned[1]
            except DecodeError:
                pass
    return pb.EvaluateResponse.FromString(raw), None


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
    def from_proto(cls, response: pb.EvaluateResponse,
                   views: Sequence[memoryview] | None = None) -> EvaluateResult:
        """Decode a response (arrays are read-only views of the message bytes; ``views``:
        those of a response :func:`parse_response` scanned)."""
        grads, outputs = response.grads, response.outputs  # maps: keys then lookups beat items()
        return cls(
            loss=decode_tensor(response.loss, "loss", views),
            grads={k: decode_tensor(grads[k], f"grads.{k}", views) for k in grads},
            outputs={k: decode_tensor(outputs[k], f"outputs.{k}", views) for k in outputs} if outputs else {},
            request_id=response.request_id,
            loss_id=response.loss_id,
        )


    @classmethod
    def from_parsed(cls, parsed: Parsed) -> EvaluateResult:
        """Decode what :func:`parse_response` returned."""
        return cls.from_proto(*parsed)
