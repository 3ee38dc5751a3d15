"""The Open Inference Protocol messages, built in a private descriptor pool.

``grpc_service.binpb`` is the descriptor set ``make proto`` writes from
``proto/inference/grpc_service.proto``. Its messages have the standard full names
(``inference.ModelInferRequest``...) and wire format, but live in their own
``DescriptorPool``: importing lossd next to tritonclient (which registers the same
``inference`` names in the default pool) never clashes, whichever is imported first.
"""

from __future__ import annotations

import pathlib
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "inference.GRPCInferenceService"

_FILES = descriptor_pb2.FileDescriptorSet.FromString(
    (pathlib.Path(__file__).parent / "grpc_service.binpb").read_bytes())
POOL = descriptor_pool.DescriptorPool()
for _file in _FILES.file:
    POOL.Add(_file)


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"inference.{name}"))


ServerLiveRequest = _message("ServerLiveRequest")
ServerLiveResponse = _message("ServerLiveResponse")
ServerReadyRequest = _message("ServerReadyRequest")
ServerReadyResponse = _message("ServerReadyResponse")
ModelReadyRequest = _message("ModelReadyRequest")
ModelReadyResponse = _message("ModelReadyResponse")
ServerMetadataRequest = _message("ServerMetadataRequest")
ServerMetadataResponse = _message("ServerMetadataResponse")
ModelMetadataRequest = _message("ModelMetadataRequest")
ModelMetadataResponse = _message("ModelMetadataResponse")
InferParameter = _message("InferParameter")
ModelInferRequest = _message("ModelInferRequest")
ModelInferResponse = _message("ModelInferResponse")
ModelStreamInferResponse = _message("ModelStreamInferResponse")
