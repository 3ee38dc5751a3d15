"""/metrics after known call sequences: exact counter increments and histogram counts,
bounded labels, one registry per server, cancelled and expired calls with their real codes."""

from __future__ import annotations

import asyncio
import threading

import grpc
import httpx
import numpy as np
import prometheus_client
import pytest

from lossd.losses.registry import SPECS
from lossd.metrics import DEFAULT_BUCKETS, parse_buckets
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import build_request
from tests.observability.harness import (
    matching,
    metrics_text,
    parse,
    running_app,
    scrape,
    stub_for,
    value,
)

IDS = {spec.id for spec in SPECS}
X = np.linspace(-1, 1, 256, dtype=np.float32)  # 1 KiB


def mse(n: int = 256, loss: str = "mse") -> pb.EvaluateRequest:
    return build_request(loss, {"input": X[:n], "target": np.zeros(n, np.float32)})


def sce() -> pb.EvaluateRequest:
    logits = np.arange(32, dtype=np.float64).reshape(8, 4) / 10
    return build_request("softmax_cross_entropy", {"input": logits, "target": np.arange(8) % 4})


async def unary(stub, request) -> tuple[str, int]:
    """(status code name, response size) of one Evaluate call."""
    try:
        response = await stub.Evaluate(request, timeout=30)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, 0
    return "OK", response.ByteSize()


def by_labels(series: dict[frozenset, float], *names: str) -> dict[tuple, float]:
    return {tuple(dict(key)[n] for n in names): v for key, v in series.items()}


def rest_body(n: int, m: int) -> dict:
    return {"inputs": {"input": {"dtype": "float32", "shape": [n], "data": [0.5] * n},
                       "target": {"dtype": "float32", "shape": [m], "data": [0.0] * m}}}


async def known_sequence(app) -> dict:
    """The calls of the exact-count test; returns what the client saw."""
    seen = {"req_bytes": {}, "resp_bytes": {}}

    def note(loss: str, request: pb.EvaluateRequest, response_size: int) -> None:
        seen["req_bytes"][loss] = seen["req_bytes"].get(loss, 0) + request.ByteSize()
        seen["resp_bytes"][loss] = seen["resp_bytes"].get(loss, 0) + response_size

    async with stub_for(app) as stub:
        for request, loss, code in [
            (mse(), "mse", "OK"), (mse(), "mse", "OK"), (mse(), "mse", "OK"),
            (mse(loss="mse_loss"), "mse", "OK"),                          # alias -> canonical id
            (build_request("mse", {"input": X, "target": X[:255]}), "mse", "INVALID_ARGUMENT"),
            (mse(loss="no_such_loss"), "unknown", "NOT_FOUND"),
            (mse(loss="'); DROP TABLE losses; --"), "unknown", "NOT_FOUND"),
            (sce(), "softmax_cross_entropy", "OK"), (sce(), "softmax_cross_entropy", "OK"),
        ]:
            got, size = await unary(stub, request)
            assert got == code
            note(loss, request, size)
        stream_requests = [mse(), mse(loss="zzz_stream")]
        replies = [r async for r in stub.EvaluateStream(iter(stream_requests), timeout=30)]
        assert [r.WhichOneof("result") for r in replies] == ["response", "error"]
        note("mse", stream_requests[0], replies[0].response.ByteSize())
        note("unknown", stream_requests[1], 0)
        await stub.ListLosses(pb.ListLossesRequest(), timeout=30)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", timeout=30) as http:
        for path, body, status in [("l1", rest_body(64, 64), 200), ("l1", rest_body(64, 64), 200),
                                   ("l1", rest_body(64, 63), 400), ("nope_rest", rest_body(4, 4), 404)]:
            response = await http.post(f"/v1/losses/{path}:evaluate", json=body)
            assert response.status_code == status, response.text
    return seen


def test_known_sequence_gives_exact_counts():
    async def scenario():
        async with running_app() as app:
            before = await scrape(app)
            seen = await known_sequence(app)
            return before, await scrape(app), seen

    before, after, seen = asyncio.run(scenario())
    assert not matching(before, "lossd_requests_total")
    expected = {
        ("grpc", "Evaluate", "mse", "OK"): 4,
        ("grpc", "Evaluate", "mse", "INVALID_ARGUMENT"): 1,
        ("grpc", "Evaluate", "unknown", "NOT_FOUND"): 2,
        ("grpc", "Evaluate", "softmax_cross_entropy", "OK"): 2,
        ("grpc", "EvaluateStream", "mse", "OK"): 1,
        ("grpc", "EvaluateStream", "unknown", "NOT_FOUND"): 1,
        ("grpc", "ListLosses", "", "OK"): 1,
        ("rest", "rest_evaluate", "l1", "OK"): 2,
        ("rest", "rest_evaluate", "l1", "INVALID_ARGUMENT"): 1,
        ("rest", "rest_evaluate", "unknown", "NOT_FOUND"): 1,
    }
    call = ("transport", "method", "loss", "code")
    assert by_labels(matching(after, "lossd_requests_total"), *call) == expected
    assert by_labels(matching(after, "lossd_request_duration_seconds_count"), *call) == expected
    assert by_labels(matching(after, "lossd_request_duration_seconds_bucket", le="+Inf"), *call) == expected
    for key, count in expected.items():  # cumulative buckets end at the count
        buckets = by_labels(matching(after, "lossd_request_duration_seconds_bucket",
                                     **dict(zip(call, key))), "le")
        counts = [buckets[(repr(float(b)),)] for b in DEFAULT_BUCKETS] + [buckets[("+Inf",)]]
        assert counts == sorted(counts) and counts[-1] == count and len(buckets) == len(counts)

    # phases: decode, queue and validate for every call that reached the data plane;
    # compute and encode for successful ones (REST refuses an unknown path before decoding)
    def phases(reached: int, ok: int) -> dict[str, int]:
        return {"decode": reached, "queue": reached, "validate": reached, "compute": ok, "encode": ok}

    want_phases = {"mse": phases(6, 5), "softmax_cross_entropy": phases(2, 2), "l1": phases(3, 2),
                   "unknown": phases(3, 0)}
    got_phases: dict[str, dict[str, int]] = {}
    for (loss, phase), count in by_labels(matching(after, "lossd_phase_duration_seconds_count"),
                                          "loss", "phase").items():
        if count:
            got_phases.setdefault(loss, {})[phase] = int(count)
    assert got_phases == {loss: {p: c for p, c in ph.items() if c} for loss, ph in want_phases.items()}

    want_bytes = {("grpc", "mse"): 6, ("grpc", "softmax_cross_entropy"): 2, ("grpc", "unknown"): 3,
                  ("rest", "l1"): 3, ("rest", "unknown"): 1}
    for name in ("lossd_request_bytes_count", "lossd_response_bytes_count"):
        assert by_labels(matching(after, name), "transport", "loss") == want_bytes
    for loss, total in seen["req_bytes"].items():
        assert value(after, "lossd_request_bytes_sum", transport="grpc", loss=loss) == total
    for loss, total in seen["resp_bytes"].items():
        assert value(after, "lossd_response_bytes_sum", transport="grpc", loss=loss) == total
    assert seen["resp_bytes"]["mse"] > 0 and seen["resp_bytes"]["unknown"] == 0

    assert by_labels(matching(after, "lossd_elements_total"), "loss", "dtype") == {
        ("mse", "float32"): 5 * 512, ("softmax_cross_entropy", "float64"): 2 * 40, ("l1", "float32"): 2 * 128}
    assert by_labels(matching(after, "lossd_requests_in_flight"), "transport") == {("grpc",): 0, ("rest",): 0}
    assert value(after, "lossd_ready") == 1


def test_unknown_loss_names_leave_only_unknown_label():
    names = ["MSE", "mse ", "no/such", "x" * 300, "ünïcødé", "", "{loss=\"mse\"}", "mse\n"]

    async def scenario():
        async with running_app() as app:
            async with stub_for(app) as stub:
                for name in names:
                    assert (await unary(stub, mse(loss=name)))[0] == "NOT_FOUND"
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}") as http:
                response = await http.post("/v1/losses/rest_weird_name:evaluate", json=rest_body(2, 2))
                assert response.status_code == 404
            return (await metrics_text(app)).text

    text = asyncio.run(scenario())
    samples = parse(text)
    losses = {dict(labels).get("loss") for (_, labels) in samples} - {None}
    assert losses == {"unknown"}
    assert value(samples, "lossd_requests_total", transport="grpc", method="Evaluate", loss="unknown",
                 code="NOT_FOUND") == len(names)
    for name in ("MSE", "no/such", "xxxxxxxx", "ünïcødé", "rest_weird_name"):
        assert name not in text


def test_two_apps_in_one_process_do_not_share_counts():
    async def scenario():
        async with running_app() as first, running_app() as second:
            async with stub_for(first) as stub:
                for _ in range(3):
                    assert (await unary(stub, mse()))[0] == "OK"
            async with stub_for(second) as stub:
                assert (await unary(stub, mse()))[0] == "OK"
                assert (await unary(stub, mse(loss="nope")))[0] == "NOT_FOUND"
            return await scrape(first), await scrape(second)

    first, second = asyncio.run(scenario())
    call = ("transport", "method", "loss", "code")
    assert by_labels(matching(first, "lossd_requests_total"), *call) == {("grpc", "Evaluate", "mse", "OK"): 3}
    assert by_labels(matching(second, "lossd_requests_total"), *call) == {
        ("grpc", "Evaluate", "mse", "OK"): 1, ("grpc", "Evaluate", "unknown", "NOT_FOUND"): 1}
    global_names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not {n for n in global_names if n.startswith("lossd")}


def test_cancelled_and_expired_calls_count_with_their_codes():
    """One compute worker held busy, so calls wait in the queue until the client goes away."""

    async def wait_for(app, name, want, **labels):
        for _ in range(1000):
            samples = await scrape(app)
            if value(samples, name, **labels) == want:
                return samples
            await asyncio.sleep(0.01)
        raise AssertionError(f"{name}{labels} never reached {want}")

    async def scenario():
        async with running_app(workers=1, inline_bytes=0) as app:  # the held worker must be used
            gate = threading.Event()
            app.plane.executor.submit(gate.wait)
            try:
                async with stub_for(app) as stub:
                    call = stub.Evaluate(mse())
                    await wait_for(app, "lossd_requests_in_flight", 1, transport="grpc")
                    call.cancel()
                    await wait_for(app, "lossd_requests_total", 1, transport="grpc", method="Evaluate",
                                   loss="mse", code="CANCELLED")
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await stub.Evaluate(mse(), timeout=0.5)
                    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                    await wait_for(app, "lossd_requests_total", 1, transport="grpc", method="Evaluate",
                                   loss="mse", code="DEADLINE_EXCEEDED")
                    gate.set()
                    assert (await unary(stub, mse()))[0] == "OK"
            finally:
                gate.set()
            return await scrape(app)

    samples = asyncio.run(scenario())
    assert by_labels(matching(samples, "lossd_requests_total"), "code") == {
        ("CANCELLED",): 1, ("DEADLINE_EXCEEDED",): 1, ("OK",): 1}
    assert value(samples, "lossd_requests_in_flight", transport="grpc") == 0


def test_buckets_are_overridable_and_metrics_can_be_off():
    assert parse_buckets("") == DEFAULT_BUCKETS
    assert DEFAULT_BUCKETS[0] == 1e-5 and DEFAULT_BUCKETS[-1] == 10.0 and len(DEFAULT_BUCKETS) == 19
    assert parse_buckets("0.1, 0.001,0.01") == (0.001, 0.01, 0.1)
    for bad in ("0,1", "-1", "nan", "inf", "x"):
        with pytest.raises(ValueError):
            parse_buckets(bad)

    async def scenario():
        async with running_app(metrics_buckets="0.001,0.01") as app:
            async with stub_for(app) as stub:
                await unary(stub, mse())
            custom = await scrape(app)
        async with running_app(metrics=False) as app:
            async with stub_for(app) as stub:
                assert (await unary(stub, mse()))[0] == "OK"
            async with httpx.AsyncClient() as http:
                off = await http.get(f"http://127.0.0.1:{app.http_port}/metrics")
        return custom, off.status_code

    custom, off_status = asyncio.run(scenario())
    les = {dict(k)["le"] for k in matching(custom, "lossd_request_duration_seconds_bucket")}
    assert les == {"0.001", "0.01", "+Inf"}
    assert {dict(k)["le"] for k in matching(custom, "lossd_phase_duration_seconds_bucket")} == les
    assert off_status == 404


def test_openmetrics_on_request_and_separate_metrics_port():
    async def scenario():
        async with running_app(metrics_port=0) as app:
            assert app.metrics_port not in (0, app.http_port)
            plain = await metrics_text(app)
            om = await metrics_text(app, accept="application/openmetrics-text; version=1.0.0")
            other = await metrics_text(app, port=app.metrics_port)
            return plain, om, other

    plain, om, other = asyncio.run(scenario())
    assert plain.headers["content-type"].startswith("text/plain")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF") and not plain.text.rstrip().endswith("# EOF")
    for response in (plain, other):
        samples = parse(response.text)
        assert value(samples, "lossd_ready") == 1
        assert matching(samples, "process_cpu_seconds_total")
        (info,) = matching(samples, "lossd_build_info")
        assert set(dict(info)) == {"version", "numba", "numpy", "grpcio", "python"}


def test_served_process_exports_warmup_per_loss_on_its_metrics_port():
    from tests.serverproc import start_server

    server = start_server("--metrics-port", "0", "--metrics-buckets", "0.0001,0.01,1")
    try:
        (line,) = [x for x in server.lines if "lossd metrics listening on" in x]
        address = line.rsplit(" ", 1)[1]
        assert address != server.http_base.removeprefix("http://")
        samples = parse(httpx.get(f"http://{address}/metrics", timeout=10).text)
        warm = by_labels(matching(samples, "lossd_jit_compile_seconds"), "loss")
        assert set(warm) == {(i,) for i in IDS} and all(v > 0 for v in warm.values())
        assert value(samples, "lossd_ready") == 1
        assert matching(samples, "process_resident_memory_bytes")
        from lossd_client import LossClient

        with LossClient(server.grpc_target, timeout=30) as client:
            client.evaluate("mse", {"input": X, "target": X})
        samples = parse(httpx.get(server.http_base + "/metrics", timeout=10).text)
        assert {dict(k)["le"] for k in matching(samples, "lossd_request_duration_seconds_bucket")} == {
            "0.0001", "0.01", "1.0", "+Inf"}
    finally:
        assert server.terminate() == 0


def test_metrics_port_is_protected_like_the_http_port():
    async def scenario():
        out = {}
        for protect in (True, False):
            async with running_app(metrics_port=0, auth_token="s3cret-token", metrics_auth=protect) as app:
                async with httpx.AsyncClient() as http:
                    for port in (app.http_port, app.metrics_port):
                        url = f"http://127.0.0.1:{port}/metrics"
                        bare = (await http.get(url)).status_code
                        good = (await http.get(url, headers={"Authorization": "Bearer s3cret-token"}))
                        out[(protect, port == app.metrics_port)] = (bare, good.status_code)
        return out

    codes = asyncio.run(scenario())
    assert codes == {(True, False): (401, 200), (True, True): (401, 200),
                     (False, False): (200, 200), (False, True): (200, 200)}
