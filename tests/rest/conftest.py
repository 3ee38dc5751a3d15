"""Fixtures for the REST tests: an HTTP client on the session server, REST helpers."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import pytest

DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64",
               np.dtype(np.int32): "int32", np.dtype(np.int64): "int64"}


@pytest.fixture(scope="session")
def http(server):
    """An httpx client on the session server's HTTP port."""
    with httpx.Client(base_url=server.http_base, timeout=120) as c:
        yield c


def tensor(a: Any, form: str = "lists", nested: bool = False) -> dict[str, Any]:
    """The REST JSON form of an array."""
    a = np.asarray(a)
    out: dict[str, Any] = {"dtype": DTYPE_NAMES[a.dtype], "shape": list(a.shape)}
    if form == "b64":
        out["b64"] = base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
                                      ).decode()
    else:
        out["data"] = a.tolist() if nested else a.ravel().tolist()
    return out


def array(t: dict[str, Any]) -> np.ndarray:
    """A REST JSON tensor as an array (b64 decoded bytewise; lists parsed as float64 first)."""
    dtype = np.dtype(t["dtype"]).newbyteorder("<")
    if "b64" in t:
        return np.frombuffer(base64.b64decode(t["b64"]), dtype).reshape(t["shape"])
    return np.array(t["data"], dtype=np.float64 if dtype.kind == "f" else dtype).astype(dtype).reshape(
        t["shape"])


def body(inputs: dict[str, Any], params: dict[str, Any] | None = None, form: str = "lists",
         **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"inputs": {k: tensor(v, form) for k, v in inputs.items()}}
    if params:
        out["params"] = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
    out.update(extra)
    return out
