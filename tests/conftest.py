"""Shared fixtures: a real lossd server on free 127.0.0.1 ports and an SDK client.

The parallel threshold is lowered so moderate test shapes exercise the parallel
kernel builds (set before lossd is imported anywhere in the test process).
"""

from __future__ import annotations

import os

os.environ.setdefault("LOSSD_PARALLEL_THRESHOLD", "4096")

import pytest  # noqa: E402

from tests.serverproc import ServerProcess, start_server  # noqa: E402


@pytest.fixture(scope="session")
def server() -> ServerProcess:
    """One lossd server for the whole session."""
    proc = start_server()
    yield proc
    proc.terminate()


@pytest.fixture(scope="session")
def client(server: ServerProcess):
    """A LossClient connected to the session server."""
    from lossd_client import LossClient

    with LossClient(server.grpc_target, timeout=60) as c:
        yield c


@pytest.fixture()
def plane():
    """An in-process DataPlane with one worker thread, ready (no server around it)."""
    from lossd.core.dataplane import DataPlane
    from lossd.settings import Settings

    p = DataPlane(Settings(workers=1))
    p.ready = True
    yield p
    p.close()
