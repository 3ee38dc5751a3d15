"""The contract itself: generated code is fresh, the SDK stays light, codec rules."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from lossd_client import InvalidArgument
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import decode_tensor, encode_param, encode_tensor

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_proto.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sdk_imports_without_server_dependencies():
    code = ("import sys, lossd_client; "
            "bad = [m for m in ('numba', 'lossd', 'prometheus_client', 'starlette') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sdk_declared_dependencies():
    text = (ROOT / "client" / "pyproject.toml").read_text()
    deps = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    names = sorted(line.strip().strip('",').split(">")[0].split("=")[0].split("<")[0]
                   for line in deps.splitlines() if line.strip())
    assert names == ["grpcio", "numpy", "protobuf"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_tensor_roundtrip_zero_copy(dtype):
    a = (np.arange(12, dtype=dtype) - 5).reshape(3, 4)
    tensor = encode_tensor(a)
    back = decode_tensor(tensor)
    assert back.dtype == a.dtype and back.shape == a.shape and not back.flags.writeable
    np.testing.assert_array_equal(back, a)


def test_big_endian_and_non_contiguous_inputs_are_normalised():
    a = np.arange(6, dtype=">f8").reshape(2, 3).T
    back = decode_tensor(encode_tensor(a))
    np.testing.assert_array_equal(back, a)
    assert back.dtype == np.dtype("<f8")


def test_unsendable_dtype_is_rejected_client_side():
    with pytest.raises(InvalidArgument) as err:
        encode_tensor(np.zeros(3, np.complex64), "inputs.x")
    assert "inputs.x" in err.value.message and "complex64" in err.value.message


def test_params_are_typed():
    assert encode_param(True).WhichOneof("kind") == "bool_value"
    assert encode_param(3).WhichOneof("kind") == "int_value"
    assert encode_param(np.int64(3)).WhichOneof("kind") == "int_value"
    assert encode_param(3.0).WhichOneof("kind") == "double_value"
    assert encode_param("sum").WhichOneof("kind") == "string_value"
    with pytest.raises(InvalidArgument):
        encode_param([1, 2])


def test_enum_zero_value_is_unspecified():
    assert pb.DType.Name(0) == "DTYPE_UNSPECIFIED" and pb.ParamType.Name(0) == "PARAM_TYPE_UNSPECIFIED"
