"""Security settings that must fail loudly rather than serve less protected than asked,
and token checks that see the raw bytes."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from lossd.security import auth_token, grpc_server_credentials, token_matches
from lossd.settings import Settings
from lossd_client.errors import from_rpc_error
from tests.serverproc import start_server


def test_client_ca_without_certificate_is_an_error():
    with pytest.raises(ValueError, match="need --tls-cert"):
        grpc_server_credentials(Settings(tls_client_ca="ca.pem"))
    with pytest.raises(ValueError, match="need --tls-cert"):
        grpc_server_credentials(Settings(tls_key="key.pem"))
    with pytest.raises(ValueError, match="needs --tls-key"):
        grpc_server_credentials(Settings(tls_cert="cert.pem"))
    assert grpc_server_credentials(Settings()) is None


def test_empty_token_file_is_an_error_not_authentication_off(tmp_path):
    empty = tmp_path / "token"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        auth_token(Settings(auth_token_file=str(empty)))
    out = subprocess.run([sys.executable, "-m", "lossd.cli", "serve", "--grpc-port", "0", "--http-port",
                          "0", "--warmup", "false", "--auth-token-file", str(empty)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "is empty" in out.stderr


def test_token_compared_on_raw_bytes():
    token = "s\u00e9cret"
    assert token_matches(f"Bearer {token}".encode(), token)
    assert token_matches(f"Bearer {token}", token)
    assert not token_matches(f"Bearer {token}".encode("latin-1"), token)
    assert not token_matches(b"Bearer s", token) and not token_matches(None, token)


def test_unauthenticated_garbage_is_refused_before_parsing():
    server = start_server("--auth-token", "t0ken", "--warmup", "false", "--drain-delay", "0")
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            call = channel.unary_unary("/lossd.v1.LossService/Evaluate")
            with pytest.raises(grpc.RpcError) as err:
                call(b"\xff\xff\xff\xff", timeout=30)
            assert from_rpc_error(err.value).code == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as err:  # with the token: parsed, and invalid
                call(b"\xff\xff\xff\xff", timeout=30, metadata=(("authorization", "Bearer t0ken"),))
            assert from_rpc_error(err.value).code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        assert server.terminate() == 0
