"""Logging set-up: JSON lines (default) or text, level by flag/env. Never tensor contents."""

from __future__ import annotations

import json
import logging
import sys
import time

from lossd.core.observer import CallRecord

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items()
                          if k not in _STANDARD and not k.startswith("_"))
        base = f"{self.formatTime(record)} {record.levelname.lower()} {record.name} {record.getMessage()}"
        text = f"{base} {extras}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(level: str = "info", fmt: str = "json") -> None:
    """Send lossd's logs to stderr in the chosen format and level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("lossd")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class RequestLog:
    """An Observer writing one line per call: at debug for successes, at warning for errors.

    Fields: request_id, transport, method, loss, dtype, elements, code, duration_ms,
    request/response bytes, per-phase milliseconds and, for errors, the error message.
    Never tensor contents (a CallRecord carries none).
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("lossd.requests")

    def call_started(self, transport: str) -> None:
        return None

    def call_finished(self, record: CallRecord) -> None:
        ok = record.code == "OK"
        level = logging.DEBUG if ok else logging.WARNING
        if not self.log.isEnabledFor(level):
            return
        extra = {"request_id": record.request_id, "transport": record.transport,
                 "method": record.method, "loss": record.loss, "dtype": record.dtype,
                 "elements": record.elements, "code": record.code,
                 "duration_ms": round(record.duration * 1e3, 3),
                 "request_bytes": record.request_bytes, "response_bytes": record.response_bytes,
                 "phases_ms": {k: round(v * 1e3, 3) for k, v in record.phases.items()}}
        if not ok:
            extra["error"] = record.message
        self.log.log(level, "request" if ok else "request failed", extra=extra)
