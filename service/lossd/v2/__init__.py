"""The Open Inference Protocol (KServe V2) front: gRPC ``inference.GRPCInferenceService``
(``grpc.py``) and REST ``/v2/...`` (``rest.py``) over the same DataPlane as lossd.v1.

Import ``inference_handler`` / ``v2_routes`` from those modules."""
