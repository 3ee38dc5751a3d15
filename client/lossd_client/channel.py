"""Channel construction and retries, shared by the sync and asyncio clients.

A target is ``"host:port"``, a DNS name resolved to several addresses
(``"dns:///lossd-headless:50051"``), or a list of ``"host:port"`` addresses. Calls are
spread with the ``round_robin`` policy. Messages up to 256 MiB are allowed.

Retries are the SDK's own, never grpc's: the channel is built with
``grpc.enable_retries`` 0, because grpc's retry filter, once enabled, sits in the path of
every call of the channel (about 0.15-0.2 ms per 1 KiB Evaluate on loopback, a quarter of
the call) even for methods without a retry policy. A call that fails with UNAVAILABLE is
tried again after a jittered exponential backoff (0.05 s doubling up to 1 s, as
:func:`retry_delays` draws), ``retries`` attempts in all, within the call's deadline:

- ``Evaluate`` and ``ListLosses``: the whole call (they have no side effects);
- ``EvaluateStream``: the SDK writes every request of the stream itself, so it keeps the
  ones not answered yet and, when the call fails with UNAVAILABLE *before its first
  response*, opens a new call and sends them again (the rule grpc's retry policy applies
  to streams: a call that has received a response is committed). Once a response has come,
  a failure of the call is raised to the caller, and so are the later ones.
"""

from __future__ import annotations

import json
import random
import time
from typing import Iterator, Sequence

import grpc

from lossd_client.errors import from_rpc_error

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
SERVICE_NAME = "lossd.v1.LossService"
EVALUATE_METHOD = f"/{SERVICE_NAME}/Evaluate"
INITIAL_BACKOFF, MAX_BACKOFF, BACKOFF_MULTIPLIER = 0.05, 1.0, 2.0
#: the channel's service config: balancing only (no retry policy; see the module docstring)
SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def retry_delays(retries: int) -> Iterator[float]:
    """The pauses before each retry of a call allowed ``retries`` attempts in all
    (jittered exponential backoff, 0.05 s doubling up to 1 s)."""
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


class Attempts:
    """The retry state of one call: ``retries`` attempts in all, none started after
    ``seconds`` (None: no deadline) from now."""

    __slots__ = ("deadline", "_retries", "_delays")

    def __init__(self, retries: int, seconds: float | None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self._retries = retries
        self._delays: Iterator[float] | None = None  # drawn on the first failure only

    def timeout(self) -> float | None:
        """The timeout of the next attempt: what is left of the deadline."""
        return remaining(self.deadline)

    def pause(self, exc: grpc.RpcError) -> float:
        """The pause before the next attempt after ``exc``; raises ``exc``'s typed
        :class:`lossd_client.LossdError` when it is not retried (not UNAVAILABLE, no attempt or time left)."""
        if self._delays is None:
            self._delays = retry_delays(self._retries)
        delay = next(self._delays, None)
        if delay is None or not should_retry(exc, delay, self.deadline):
            raise from_rpc_error(exc) from None
        return delay


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
                    extra: Sequence[tuple[str, object]] = ()) -> list:
    """Channel options: message limits, round_robin, grpc's retries off (the SDK retries)."""
    options: list[tuple[str, object]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.enable_retries", 0),
        ("grpc.service_config", SERVICE_CONFIG),
    ]
    options.extend(extra)
    return options
