"""The SDK against a real server: sync, asyncio and stream calls, ListLosses, dtypes."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import lossd
from lossd_client import AsyncLossClient, EvaluateResult, InvalidArgument, NotFound


def _mse_inputs(dtype=np.float32):
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, 3.0]], dtype)
    y = np.array([[0.0, 1.0, 2.5], [1.0, 0.25, -1.0]], dtype)
    return x, y


def test_evaluate_sync_matches_formula(client):
    x, y = _mse_inputs()
    result = client.evaluate("mse", {"input": x, "target": y})
    d = x.astype(np.float64) - y
    assert isinstance(result, EvaluateResult)
    assert result.loss.shape == () and result.loss.dtype == np.float32
    assert result.loss == np.float32(np.mean(d * d))
    np.testing.assert_allclose(result.grads["input"], 2 * d / d.size, rtol=1e-6)
    np.testing.assert_allclose(result.grads["target"], -2 * d / d.size, rtol=1e-6)
    assert result.grads["input"].dtype == np.float32
    assert result.loss_id == "mse" and result.request_id


def test_float64_and_alias_and_request_id(client):
    x, y = _mse_inputs(np.float64)
    result = client.evaluate("mse_loss", {"input": x, "target": y}, {"reduction": "sum"},
                             request_id="abc-123")
    assert result.loss.dtype == np.float64
    assert result.loss == np.sum((x - y) ** 2)
    assert result.loss_id == "mse" and result.request_id == "abc-123"


def test_grads_selection(client):
    x, y = _mse_inputs()
    only = client.evaluate("mse", {"input": x, "target": y}, grads=["target"])
    assert set(only.grads) == {"target"}
    none = client.evaluate("mse", {"input": x, "target": y}, grads=[])
    assert none.grads == {}
    assert none.loss == only.loss


def test_reduction_none_shape(client):
    x, y = _mse_inputs()
    result = client.evaluate("mse", {"input": x, "target": y}, {"reduction": "none"})
    assert result.loss.shape == x.shape
    np.testing.assert_array_equal(result.loss, ((x.astype(np.float64) - y) ** 2).astype(np.float32))


def test_array_likes_and_same_numbers_as_in_process(client):
    z = [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]]
    remote = client.evaluate("cross_entropy", {"input": z, "target": [0, 1]},
                             {"label_smoothing": 0.1})
    local = lossd.evaluate("cross_entropy", {"input": z, "target": [0, 1]},
                           {"label_smoothing": 0.1})
    assert remote.loss.dtype == np.float64
    np.testing.assert_array_equal(remote.loss, local.loss)
    np.testing.assert_array_equal(remote.grads["input"], local.grads["input"])


def test_stream_in_order_and_survives_errors(client):
    x, y = _mse_inputs()
    with client.stream() as stream:
        first = stream.evaluate("mse", {"input": x, "target": y}, request_id="one")
        with pytest.raises(InvalidArgument) as bad:
            stream.evaluate("mse", {"input": x, "target": y[:1]})
        assert "inputs.target" in bad.value.message
        with pytest.raises(NotFound):
            stream.evaluate("nope", {"input": x})
        again = stream.evaluate("mse", {"input": x, "target": y}, {"reduction": "sum"})
    assert first.request_id == "one"
    assert again.loss == np.float32(np.sum((x.astype(np.float64) - y) ** 2))


def test_stream_pipelined(client):
    from lossd_client.codec import build_request

    x, y = _mse_inputs()
    with client.stream() as stream:
        outcomes = list(stream.evaluate_many(
            [build_request("mse", {"input": x * k, "target": y}, request_id=str(k)) for k in range(5)]
            + [build_request("mse", {"input": x}, request_id="bad")]))
    assert [o.request_id for o in outcomes[:5]] == ["0", "1", "2", "3", "4"]
    assert isinstance(outcomes[5], InvalidArgument) and outcomes[5].request_id == "bad"


def test_async_client_and_stream(server):
    x, y = _mse_inputs()

    async def main():
        async with AsyncLossClient(server.grpc_target, timeout=30) as aclient:
            result = await aclient.evaluate("mse", {"input": x, "target": y})
            losses = await aclient.list_losses()
            async with aclient.stream() as stream:
                streamed = [await stream.evaluate("mse", {"input": x, "target": y * k})
                            for k in range(3)]
                with pytest.raises(InvalidArgument):
                    await stream.evaluate("mse", {"input": x, "target": y}, {"reduction": "avg"})
                after = await stream.evaluate("mse", {"input": x, "target": y})
            results = await asyncio.gather(*[aclient.evaluate("mse", {"input": x, "target": y})
                                             for _ in range(8)])
            return result, losses, streamed, after, results

    result, losses, streamed, after, results = asyncio.run(main())
    assert result.loss == np.float32(np.mean((x.astype(np.float64) - y) ** 2))
    assert {s.id for s in losses} >= {"mse", "softmax_cross_entropy"}
    assert streamed[1].loss == result.loss and after.loss == result.loss
    assert all(r.loss == result.loss for r in results)


def test_list_losses_schema(client):
    losses = {s.id: s for s in client.list_losses()}
    ce = losses["softmax_cross_entropy"]
    assert "cross_entropy" in ce.aliases
    inputs = {i.name: i for i in ce.inputs}
    assert inputs["input"].differentiable and inputs["input"].required
    assert not inputs["weight"].required
    params = {p.name: p for p in ce.params}
    assert params["ignore_index"].default_value.int_value == -100
    assert params["label_smoothing"].minimum == 0.0 and params["label_smoothing"].maximum == 1.0
    assert list(params["reduction"].allowed_values) == ["none", "sum", "mean", "batchmean"]
    assert params["reduction"].default_value.string_value == "mean"
    assert set(ce.reductions) == {"none", "sum", "mean", "batchmean"}
    assert ce.description and ce.loss_shape
    assert {s["id"] for s in lossd.list_losses()} == set(losses)
