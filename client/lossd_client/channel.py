"""Channel construction shared by the sync and asyncio clients.

A target is ``"host:port"``, a DNS name resolved to several addresses
(``"dns:///lossd-headless:50051"``), or a list of ``"host:port"`` addresses. Calls are
spread with the ``round_robin`` policy and retried on UNAVAILABLE with exponential
backoff: unary ``Evaluate`` calls by the SDK itself (:func:`retry_delays`; grpc's retry
filter would copy every request into its retry buffer and cost about 0.1 ms a call),
the other methods through the channel's service config. Messages up to 256 MiB are
allowed.
"""

from __future__ import annotations

import json
import random
import time
from typing import Iterator, Sequence

import grpc

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
SERVICE_NAME = "lossd.v1.LossService"
EVALUATE_METHOD = f"/{SERVICE_NAME}/Evaluate"
INITIAL_BACKOFF, MAX_BACKOFF, BACKOFF_MULTIPLIER = 0.05, 1.0, 2.0
#: the methods the channel's retry policy covers (Evaluate is retried by the SDK)
CHANNEL_RETRIED = ("EvaluateStream", "ListLosses")


def service_config(max_attempts: int = 5) -> str:
    """The JSON service config: round_robin and retries of UNAVAILABLE."""
    return json.dumps({
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{
            "name": [{"service": SERVICE_NAME, "method": m} for m in CHANNEL_RETRIED],
            "retryPolicy": {
                "maxAttempts": max_attempts,
                "initialBackoff": f"{INITIAL_BACKOFF}s",
                "maxBackoff": f"{MAX_BACKOFF}s",
                "backoffMultiplier": BACKOFF_MULTIPLIER,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }],
    })


def retry_delays(retries: int) -> Iterator[float]:
    """The pauses before each retry of a call allowed ``retries`` attempts in all: the
    channel's policy (jittered exponential backoff, 0.05 s doubling up to 1 s)."""
    backoff = INITIAL_BACKOFF
    for _ in range(max(retries, 1) - 1):
        yield random.uniform(0, backoff)
        backoff = min(backoff * BACKOFF_MULTIPLIER, MAX_BACKOFF)


def should_retry(exc: grpc.RpcError, delay: float | None, deadline: float | None) -> bool:
    """Whether a call that failed with ``exc`` is tried again after ``delay`` seconds
    (None: no attempt left) without passing ``deadline`` (``time.monotonic()``)."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    return (delay is not None and code == grpc.StatusCode.UNAVAILABLE
            and (deadline is None or time.monotonic() + delay < deadline))


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


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
