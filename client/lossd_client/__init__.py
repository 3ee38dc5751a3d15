"""lossd_client: the Python SDK of lossd (losses and gradients as a service).

Depends on grpcio, protobuf and numpy only.
"""

from lossd_client.aio import AsyncEvaluateStream, AsyncLossClient
from lossd_client.client import EvaluateStream, LossClient
from lossd_client.errors import (
    Cancelled,
    DeadlineExceeded,
    FieldViolation,
    Internal,
    InvalidArgument,
    LossdError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from lossd_client.result import EvaluateResult

__version__ = "0.1.0"

__all__ = [
    "AsyncEvaluateStream", "AsyncLossClient", "Cancelled", "DeadlineExceeded", "EvaluateResult",
    "EvaluateStream", "FieldViolation", "Internal", "InvalidArgument", "LossClient", "LossdError",
    "NotFound", "PermissionDenied", "ResourceExhausted", "Unauthenticated", "Unavailable",
    "__version__",
]
