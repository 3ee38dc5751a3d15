"""Channel construction shared by the sync and asyncio clients.

A target is ``"host:port"``, a DNS name resolved to several addresses
(``"dns:///lossd-headless:50051"``), or a list of ``"host:port"`` addresses. Calls are
spread with the ``round_robin`` policy and retried on UNAVAILABLE with exponential
backoff, through the channel's service config. Messages up to 256 MiB are allowed.
"""

from __future__ import annotations

import json
from typing import Sequence

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
SERVICE_NAME = "lossd.v1.LossService"


def service_config(max_attempts: int = 5) -> str:
    """The JSON service config: round_robin and retries of UNAVAILABLE."""
    return json.dumps({
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{
            "name": [{"service": SERVICE_NAME}],
            "retryPolicy": {
                "maxAttempts": max_attempts,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }],
    })


def resolve_target(target: str | Sequence[str]) -> str:
    """A gRPC target string for one address, a resolver URI, or a list of addresses."""
    if isinstance(target, str):
        return target
    addresses = list(target)
    if not addresses:
        raise ValueError("target: an empty list of addresses")
    if len(addresses) == 1:
        return addresses[0]
    scheme = "ipv6" if all(a.startswith("[") for a in addresses) else "ipv4"
    return f"{scheme}:" + ",".join(addresses)


def channel_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                    retries: int = 5, extra: Sequence[tuple[str, object]] = ()) -> list:
    """Channel options: message limits, service config (balancing, retries)."""
    options: list[tuple[str, object]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.enable_retries", 1 if retries > 1 else 0),
        ("grpc.service_config", service_config(max(retries, 2))),
        ("grpc.per_rpc_retry_buffer_size", 16 * 1024 * 1024),
        ("grpc.retry_buffer_size", 64 * 1024 * 1024),
    ]
    options.extend(extra)
    return options
