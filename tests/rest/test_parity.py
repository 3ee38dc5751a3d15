"""REST and gRPC give the same numbers for every registered loss: bit-identical with b64,
and with lists too (floats are written in a form that parses back to the same value)."""

from __future__ import annotations

import numpy as np
import pytest

from lossd.losses.registry import SPECS
from tests.rest.conftest import array, body

CASES = [(spec.id, dtype, i) for spec in SPECS for dtype in ("float32", "float64")
         for i in range(len(spec.examples(np.dtype(dtype))))]


def _same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes(), (a, b)


@pytest.mark.parametrize("loss,dtype,index", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_rest_equals_grpc(http, client, loss, dtype, index):
    spec = next(s for s in SPECS if s.id == loss)
    inputs, params = spec.examples(np.dtype(dtype))[index]
    expected = client.evaluate(loss, inputs, params)
    assert expected.grads or not spec.differentiable  # the example reaches the gradients
    for form in ("b64", "lists"):
        response = http.post(f"/v1/losses/{loss}:evaluate", json=body(inputs, params, form))
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["loss_id"] == loss
        key = "b64" if form == "b64" else "data"
        assert all(key in t for t in [doc["loss"], *doc["grads"].values()])
        _same_bits(array(doc["loss"]), np.asarray(expected.loss))
        assert sorted(doc["grads"]) == sorted(expected.grads)
        for name, g in expected.grads.items():
            _same_bits(array(doc["grads"][name]), np.asarray(g))
        assert sorted(doc["outputs"]) == sorted(expected.outputs)
        for name, o in expected.outputs.items():
            _same_bits(array(doc["outputs"][name]), np.asarray(o))


def test_float32_values_are_written_exactly(http, client):
    """float32 0.1 is written as the decimal of its exact value, which parses back exactly."""
    x = np.array([0.1, 1e-40, 3.4028235e38, 1.0 / 3.0], np.float32)  # 1e-40: subnormal
    y = np.zeros(4, np.float32)
    response = http.post("/v1/losses/mse:evaluate", json=body({"input": x, "target": y},
                                                              {"reduction": "none"}))
    grads = response.json()["grads"]
    data = grads["target"]["data"]
    assert response.status_code == 200
    expected = client.evaluate("mse", {"input": x, "target": y}, {"reduction": "none"})
    assert np.array(data, np.float64).tobytes() == np.asarray(expected.grads["target"], np.float64).tobytes()
    # the float32 gradient of x=0.1 is written as float(np.float32(-0.2)), not as "-0.2"
    assert data[0] == float(np.float32(-0.2)) and repr(data[0]) != "-0.2"


def test_nested_lists_and_output_format(http, client):
    x = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    y = np.ones((2, 3))
    doc = {"inputs": {"input": {"dtype": "float64", "shape": [2, 3], "data": x.tolist()},
                      "target": {"dtype": "float64", "shape": [2, 3], "data": y.ravel().tolist()}},
           "output_format": "b64", "grads": ["input"]}
    response = http.post("/v1/losses/mse_loss:evaluate", json=doc)  # an alias
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["loss_id"] == "mse" and "b64" in out["loss"] and list(out["grads"]) == ["input"]
    expected = client.evaluate("mse", {"input": x, "target": y}, grads=["input"])
    _same_bits(array(out["grads"]["input"]), expected.grads["input"])
    assert response.headers["x-request-id"] == out["request_id"]


def test_request_id_echoed_and_grads_empty(http):
    x = np.ones((2, 2), np.float32)
    response = http.post("/v1/losses/mse:evaluate", json=body({"input": x, "target": x}, form="b64",
                                                              grads=[], request_id="abc-123"))
    assert response.status_code == 200
    doc = response.json()
    assert doc["request_id"] == "abc-123" and doc["grads"] == {}
    assert array(doc["loss"]).shape == () and float(array(doc["loss"])) == 0.0


def test_non_finite_outputs_are_tokens(http, client):
    """A float32 overflow in the loss is written as "Infinity" (JSON has no inf)."""
    x = np.array([3e38, -3e38], np.float32)
    y = np.array([-3e38, 3e38], np.float32)
    response = http.post("/v1/losses/mse:evaluate", json=body({"input": x, "target": y},
                                                              {"reduction": "none"}, grads=[]))
    assert response.status_code == 200, response.text
    expected = client.evaluate("mse", {"input": x, "target": y}, {"reduction": "none"}, grads=[])
    assert not np.isfinite(expected.loss).any()
    assert response.json()["loss"]["data"] == ["Infinity", "Infinity"]
    _same_bits(array(response.json()["loss"]), expected.loss)
