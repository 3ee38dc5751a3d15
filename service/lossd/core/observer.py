"""What transports report about each call, and the interface that receives it.

Transports build one :class:`CallRecord` per call (success or error) and hand it to
``DataPlane.observer``; metrics and request logs are implementations of
:class:`Observer`. The core never imports a metrics library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class CallRecord:
    """One finished call as a transport saw it.

    ``loss`` is a canonical id or ``"unknown"`` (never a client string); ``code`` is the
    gRPC status code name (``"OK"``, ``"INVALID_ARGUMENT"``...); ``phases`` holds seconds
    for decode, validate, queue, compute and encode (those that ran).
    """

    transport: str          # "grpc" or "rest"
    method: str             # "Evaluate", "EvaluateStream", "ListLosses", "rest_evaluate"...
    loss: str
    code: str
    duration: float
    phases: dict[str, float] = field(default_factory=dict)
    request_bytes: int = 0
    response_bytes: int = 0
    request_id: str = ""
    dtype: str = ""
    elements: int = 0
    message: str = ""       # the error message for failed calls


class Observer(Protocol):
    def call_started(self, transport: str) -> None: ...

    def call_finished(self, record: CallRecord) -> None: ...


class NullObserver:
    """Records nothing (the in-process default)."""

    def call_started(self, transport: str) -> None:
        return None

    def call_finished(self, record: CallRecord) -> None:
        return None
