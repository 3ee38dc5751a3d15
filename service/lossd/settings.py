"""Server settings: one documented object, read from flags and ``LOSSD_*`` variables.

Each field has a flag ``--name-with-dashes`` and an environment variable
``LOSSD_NAME_IN_CAPS``; a flag wins over the variable, the variable over the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024


@dataclass
class Settings:
    host: str = field(default="127.0.0.1", metadata={"help": "address to bind (both transports)"})
    grpc_port: int = field(default=50051, metadata={"help": "gRPC port (0 picks a free port)"})
    http_port: int = field(default=8080, metadata={"help": "HTTP port: health, REST, metrics "
                                                           "(0 picks a free port)"})
    metrics_port: int = field(default=-1, metadata={"help": "serve /metrics on its own port too "
                                                            "(-1: off, 0: a free port)"})
    grace: float = field(default=10.0, metadata={"help": "seconds in-flight calls may finish "
                                                         "after SIGTERM"})
    drain_delay: float = field(default=1.0, metadata={"help": "seconds between SIGTERM (health "
                                                              "NOT_SERVING) and refusing new calls, so "
                                                              "balancers can notice"})
    max_message_bytes: int = field(default=256 * MIB, metadata={"help": "largest request "
                                                                        "accepted, in bytes"})
    max_elements: int = field(default=1 << 28, metadata={"help": "largest total element count "
                                                                 "of one request's inputs"})
    max_in_flight: int = field(default=64, metadata={"help": "concurrent evaluations before "
                                                             "RESOURCE_EXHAUSTED / 429"})
    max_queued_bytes: int = field(default=1024 * MIB, metadata={"help": "request bytes held by "
                                                                        "admitted calls at most"})
    workers: int = field(default=0, metadata={"help": "compute threads (0: one per core)"})
    inline_bytes: int = field(default=65536, metadata={"help": "requests up to this many bytes are "
                                                               "computed on the event loop (no "
                                                               "thread hand-off); 0: never"})
    tls_cert: str = field(default="", metadata={"help": "PEM certificate: TLS on both ports"})
    tls_key: str = field(default="", metadata={"help": "PEM private key of --tls-cert"})
    tls_client_ca: str = field(default="", metadata={"help": "PEM CA: require client "
                                                             "certificates (mutual TLS)"})
    auth_token: str = field(default="", metadata={"help": "require 'authorization: Bearer "
                                                          "<token>' on every call"})
    auth_token_file: str = field(default="", metadata={"help": "read the bearer token from "
                                                               "this file"})
    metrics_auth: bool = field(default=False, metadata={"help": "require the token on /metrics "
                                                                "too"})
    log_level: str = field(default="info", metadata={"help": "debug, info, warning or error"})
    log_format: str = field(default="json", metadata={"help": "json or text"})
    warmup: bool = field(default=True, metadata={"help": "compile every kernel before ready"})
    jit_report: bool = field(default=False, metadata={"help": "debug: count Numba compilations and "
                                                              "print them at shutdown (warm-up, after "
                                                              "ready)"})
    metrics: bool = field(default=True, metadata={"help": "export Prometheus metrics at /metrics "
                                                          "(false: no registry, no per-call cost)"})
    metrics_buckets: str = field(default="", metadata={"help": "latency histogram bounds in seconds, "
                                                               "comma-separated (empty: 10 us to 10 s, "
                                                               "1-2.5-5 per decade)"})

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)


def _env_name(name: str) -> str:
    return "LOSSD_" + name.upper()


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per Settings field; defaults come from the environment."""
    defaults = Settings()
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        env = os.environ.get(_env_name(f.name))
        kind: Any = type(default)
        if kind is bool:
            parser.add_argument(flag, type=_parse_bool, default=None,
                                help=f"{f.metadata['help']} (env {_env_name(f.name)}; default {default})")
        else:
            parser.add_argument(flag, type=kind, default=None,
                                help=f"{f.metadata['help']} (env {_env_name(f.name)}; default {default})")
        del env


def from_args(args: argparse.Namespace | None = None, **overrides: Any) -> Settings:
    """Settings from parsed flags, then ``LOSSD_*`` variables, then defaults."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        default = getattr(Settings(), f.name)
        kind: Any = type(default)
        flag_value = getattr(args, f.name, None) if args is not None else None
        if flag_value is not None:
            values[f.name] = flag_value
        elif _env_name(f.name) in os.environ:
            raw = os.environ[_env_name(f.name)]
            values[f.name] = _parse_bool(raw) if kind is bool else kind(raw)
    values.update(overrides)
    return Settings(**values)
