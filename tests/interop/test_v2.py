"""The Open Inference Protocol (KServe V2) front, driven by the stock ``tritonclient``.

gRPC (``inference.GRPCInferenceService`` on lossd's gRPC port) and REST (``/v2/...`` on
its HTTP port, JSON ``data`` and the binary tensor extension) against the session
server: the same numbers as the native API, output selection, streaming, error codes,
metrics, and the private descriptor pool that keeps lossd's V2 messages from clashing
with tritonclient's ``inference`` package.
"""

from __future__ import annotations

import re
import subprocess
import sys

import grpc
import httpx
import numpy as np
import pytest

tg = pytest.importorskip("tritonclient.grpc", reason="tritonclient is not installed (requirements-dev.txt)")
th = pytest.importorskip("tritonclient.http", reason="tritonclient is not installed (requirements-dev.txt)")
from tritonclient.grpc import service_pb2, service_pb2_grpc  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

V2_NAME = {np.dtype("float32"): "FP32", np.dtype("float64"): "FP64", np.dtype("int32"): "INT32",
           np.dtype("int64"): "INT64"}

rng = np.random.default_rng(10)
CASES = {
    "mse": ({"input": rng.standard_normal((4, 3)).astype(np.float32),
             "target": rng.standard_normal((4, 3)).astype(np.float32)}, {"reduction": "sum"}),
    "softmax_cross_entropy": ({"input": rng.standard_normal((5, 4)),
                               "target": np.array([0, 3, 1, 2, 3], np.int64)},
                              {"label_smoothing": 0.1}),
    "triplet_margin": ({k: rng.standard_normal((6, 5)).astype(np.float32)
                        for k in ("anchor", "positive", "negative")}, {"margin": 0.5, "p": 2.0}),
    "cosine_embedding": ({"input1": rng.standard_normal((6, 4)), "input2": rng.standard_normal((6, 4)),
                          "target": np.array([1, -1, 1, 1, -1, -1], np.int32)},
                         {"margin": 0.2, "reduction": "none"}),
}
#: the same float parameter sent as a double, an int64 and a string
PARAM_FORMS = {"double": 1.0, "int64": 1, "string": "1.0"}


@pytest.fixture(scope="module")
def grpc_client(server):
    with tg.InferenceServerClient(server.grpc_target) as c:
        yield c


@pytest.fixture(scope="module")
def http_client(server):
    c = th.InferenceServerClient(server.http_base.removeprefix("http://"))
    yield c
    c.close()


def grpc_inputs(inputs):
    out = []
    for name, array in inputs.items():
        i = tg.InferInput(name, list(array.shape), V2_NAME[array.dtype])
        i.set_data_from_numpy(array)
        out.append(i)
    return out


def http_inputs(inputs, binary):
    out = []
    for name, array in inputs.items():
        i = th.InferInput(name, list(array.shape), V2_NAME[array.dtype])
        i.set_data_from_numpy(array, binary_data=binary)
        out.append(i)
    return out


def assert_same_as_native(result, native):
    loss = result.as_numpy("loss")
    assert loss.dtype == native.loss.dtype
    np.testing.assert_array_equal(loss, native.loss)
    for name, grad in native.grads.items():
        got = result.as_numpy(f"grad_{name}")
        assert got is not None and got.dtype == grad.dtype
        np.testing.assert_array_equal(got, grad)


# ---- the descriptor pool ------------------------------------------------------------------

def test_messages_are_wire_compatible_with_tritonclient():
    from lossd.v2 import messages

    ours = messages.POOL.FindServiceByName("inference.GRPCInferenceService")
    theirs = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert len(ours.methods) == 7
    for method in ours.methods:
        other = theirs.methods_by_name[method.name]
        assert method.full_name == other.full_name
        assert method.input_type.full_name == other.input_type.full_name
        assert method.output_type.full_name == other.output_type.full_name
        assert (method.client_streaming, method.server_streaming) == (other.client_streaming,
                                                                    other.server_streaming)
    extensions = {"inference.ModelMetadataResponse": {"parameters"},
                  "inference.ModelMetadataResponse.TensorMetadata": {"parameters"}}
    checked = 0
    stack = list(messages.POOL.FindFileByName("inference/grpc_service.proto").message_types_by_name.values())
    while stack:
        ours_msg = stack.pop()
        stack.extend(ours_msg.nested_types)
        if ours_msg.GetOptions().map_entry:
            continue
        their_msg = service_pb2.DESCRIPTOR.pool.FindMessageTypeByName(ours_msg.full_name)
        for f in ours_msg.fields:
            if f.name in extensions.get(ours_msg.full_name, ()):
                assert f.number not in their_msg.fields_by_number  # no clash with a standard field
                continue
            t = their_msg.fields_by_name[f.name]
            assert (f.number, f.type, f.is_repeated) == (t.number, t.type, t.is_repeated), f.full_name
            checked += 1
    assert checked > 40


@pytest.mark.parametrize("order", ["lossd_first", "tritonclient_first"])
def test_v2_messages_stay_out_of_the_default_pool(order):
    imports = ["import lossd.v2.grpc", "import tritonclient.grpc"]
    if order == "tritonclient_first":
        imports.reverse()
    code = "\n".join([*imports, "from google.protobuf import descriptor_pool",
                      "pool = descriptor_pool.Default()",
                      "print(pool.FindMessageTypeByName('inference.ModelInferRequest').file.name)",
                      "try:\n    pool.FindFileByName('inference/grpc_service.proto')\n"
                      "    print('registered')\nexcept KeyError:\n    print('private')"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["grpc_service.proto", "private"]  # tritonclient's, and ours not there


# ---- gRPC ---------------------------------------------------------------------------------

def test_grpc_health_and_metadata(grpc_client):
    assert grpc_client.is_server_live() and grpc_client.is_server_ready()
    assert grpc_client.is_model_ready("mse") and grpc_client.is_model_ready("cross_entropy")
    meta = grpc_client.get_server_metadata()
    assert meta.name == "lossd" and "binary_tensor_data" in meta.extensions
    model = grpc_client.get_model_metadata("triplet_margin")
    assert model.name == "triplet_margin" and list(model.versions) == ["1"]
    assert [(i.name, i.datatype, list(i.shape)) for i in model.inputs] == [
        ("anchor", "FP32", [-1, -1]), ("positive", "FP32", [-1, -1]), ("negative", "FP32", [-1, -1])]
    assert [o.name for o in model.outputs] == ["loss", "grad_anchor", "grad_positive", "grad_negative"]
    ce = grpc_client.get_model_metadata("softmax_cross_entropy")
    assert ce.inputs[1].name == "target" and list(ce.inputs[1].shape) == [-1]  # variable rank


def test_grpc_model_metadata_carries_parameter_schema(server):
    """tritonclient drops unknown fields; the raw response has the schema (MLServer's field 6)."""
    from lossd.v2 import messages

    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelMetadata",
                                   request_serializer=messages.ModelMetadataRequest.SerializeToString,
                                   response_deserializer=messages.ModelMetadataResponse.FromString)
        meta = call(messages.ModelMetadataRequest(name="softmax_cross_entropy"), timeout=30)
    assert set(meta.parameters) == {"ignore_index", "label_smoothing", "reduction"}
    assert '"type": "double"' in meta.parameters["label_smoothing"].string_param
    assert meta.inputs[1].parameters["datatypes"].string_param == "INT32,INT64,FP32,FP64"


@pytest.mark.parametrize("loss", sorted(CASES))
def test_grpc_infer_matches_native(grpc_client, client, loss):
    inputs, params = CASES[loss]
    native = client.evaluate(loss, inputs, params)
    result = grpc_client.infer(loss, grpc_inputs(inputs), parameters=params, request_id="r-1")
    assert result.get_response().id == "r-1" and result.get_response().model_name == loss
    assert_same_as_native(result, native)
    assert {o.name for o in result.get_response().outputs} == {"loss"} | {f"grad_{k}" for k in native.grads}


@pytest.mark.parametrize("form", sorted(PARAM_FORMS))
def test_float_parameter_as_double_int_or_string(grpc_client, http_client, client, form):
    inputs = CASES["triplet_margin"][0]
    native = client.evaluate("triplet_margin", inputs, {"margin": 1.0})
    other = client.evaluate("triplet_margin", inputs, {"margin": 0.1})
    assert not np.array_equal(native.loss, other.loss)  # the parameter matters
    params = {"margin": PARAM_FORMS[form]}
    assert_same_as_native(grpc_client.infer("triplet_margin", grpc_inputs(inputs), parameters=params), native)
    assert_same_as_native(http_client.infer("triplet_margin", http_inputs(inputs, True), parameters=params),
                          native)


def test_grpc_typed_contents_request(server, client):
    """A request with typed ``contents`` (not raw bytes), built from tritonclient's own messages."""
    inputs, params = CASES["softmax_cross_entropy"]
    native = client.evaluate("softmax_cross_entropy", inputs, params)
    request = service_pb2.ModelInferRequest(model_name="softmax_cross_entropy")
    request.parameters["label_smoothing"].double_param = 0.1
    x = request.inputs.add(name="input", datatype="FP64", shape=[5, 4])
    x.contents.fp64_contents.extend(inputs["input"].ravel().tolist())
    t = request.inputs.add(name="target", datatype="INT64", shape=[5])
    t.contents.int64_contents.extend(inputs["target"].tolist())
    request.outputs.add(name="grad_input")
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert [o.name for o in response.outputs] == ["grad_input"]
    grad = np.frombuffer(response.raw_output_contents[0], np.float64).reshape(5, 4)
    np.testing.assert_array_equal(grad, native.grads["input"])


def test_requested_outputs_choose_the_gradients(grpc_client, http_client):
    inputs, _ = CASES["mse"]
    only_loss = grpc_client.infer("mse", grpc_inputs(inputs), outputs=[tg.InferRequestedOutput("loss")])
    assert [o.name for o in only_loss.get_response().outputs] == ["loss"]
    one = grpc_client.infer("mse", grpc_inputs(inputs), outputs=[tg.InferRequestedOutput("grad_target")])
    assert [o.name for o in one.get_response().outputs] == ["grad_target"]
    assert one.as_numpy("grad_input") is None
    r = http_client.infer("mse", http_inputs(inputs, False), outputs=[th.InferRequestedOutput("loss")])
    assert [o["name"] for o in r.get_response()["outputs"]] == ["loss"]


def test_grpc_stream_infer_with_an_error_in_the_middle(grpc_client, client):
    import queue

    results: queue.Queue = queue.Queue()
    grpc_client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        inputs, params = CASES["mse"]
        grpc_client.async_stream_infer("mse", grpc_inputs(inputs), parameters=params, request_id="a")
        grpc_client.async_stream_infer("no_such_loss", grpc_inputs(inputs), request_id="b")
        grpc_client.async_stream_infer("mse", grpc_inputs(inputs), parameters=params, request_id="c")
        got = [results.get(timeout=60) for _ in range(3)]
    finally:
        grpc_client.stop_stream()
    native = client.evaluate("mse", inputs, params)
    assert got[0][1] is None and got[2][1] is None
    assert_same_as_native(got[0][0], native)
    assert_same_as_native(got[2][0], native)
    assert got[1][0] is None and "NOT_FOUND" in str(got[1][1]) and "no_such_loss" in str(got[1][1])


@pytest.mark.parametrize("case", ["unknown model", "bad datatype", "bad shape", "bad param",
                                  "param out of range", "unknown output", "missing input"])
def test_errors_map_to_status(grpc_client, http_client, case):
    x = np.ones((2, 3), np.float32)
    model, inputs, params, outputs = "mse", {"input": x, "target": x}, {}, None
    status, http = "INVALID_ARGUMENT", 400
    if case == "unknown model":
        model, status, http = "nope", "NOT_FOUND", 404
    elif case == "bad datatype":
        inputs = {"input": x.astype(np.float16), "target": x}
    elif case == "bad shape":
        inputs = {"input": x, "target": np.ones((3, 2), np.float32)}
    elif case == "bad param":
        params = {"reduction": "average"}
    elif case == "param out of range":
        model, params = "triplet_margin", {"margin": "-1"}
        inputs = {k: x for k in ("anchor", "positive", "negative")}
    elif case == "unknown output":
        outputs = ["grad_nothing_like_this", "loss"]
    else:
        inputs = {"input": x}

    def g_input(name, a):
        i = tg.InferInput(name, list(a.shape), "FP16" if a.dtype == np.float16 else V2_NAME[a.dtype])
        i.set_data_from_numpy(a)
        return i

    with pytest.raises(InferenceServerException) as info:
        grpc_client.infer(model, [g_input(k, a) for k, a in inputs.items()], parameters=params,
                          outputs=[tg.InferRequestedOutput(o) for o in outputs] if outputs else None)
    assert info.value.status() == f"StatusCode.{status}", info.value.message()

    def h_input(name, a):
        i = th.InferInput(name, list(a.shape), "FP16" if a.dtype == np.float16 else V2_NAME[a.dtype])
        i.set_data_from_numpy(a, binary_data=True)
        return i

    with pytest.raises(InferenceServerException) as info:
        http_client.infer(model, [h_input(k, a) for k, a in inputs.items()], parameters=params,
                          outputs=[th.InferRequestedOutput(o) for o in outputs] if outputs else None)
    assert info.value.status() == str(http), info.value.message()


# ---- REST ---------------------------------------------------------------------------------

def test_rest_health_and_metadata(http_client, server):
    assert http_client.is_server_live() and http_client.is_server_ready()
    assert http_client.is_model_ready("mse") and not http_client.is_model_ready("nope")
    assert http_client.get_server_metadata()["name"] == "lossd"
    meta = http_client.get_model_metadata("cosine_embedding")
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("input1", "FP32", [-1, -1]), ("input2", "FP32", [-1, -1]), ("target", "INT32", [-1])]
    assert set(meta["parameters"]) == {"margin", "reduction"}
    base = server.http_base
    assert httpx.get(f"{base}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{base}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{base}/v2/models/mse/versions/1/ready").status_code == 200
    missing = httpx.get(f"{base}/v2/models/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert httpx.get(f"{base}/v2/models/mse/versions/7").status_code == 404


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("loss", sorted(CASES))
def test_rest_infer_matches_native(http_client, client, loss, binary):
    inputs, params = CASES[loss]
    native = client.evaluate(loss, inputs, params)
    names = ["loss", *[f"grad_{k}" for k in native.grads]]
    result = http_client.infer(loss, http_inputs(inputs, binary), parameters=params,
                               outputs=[th.InferRequestedOutput(n, binary_data=binary) for n in names])
    assert_same_as_native(result, native)
    for out in result.get_response()["outputs"]:
        assert ("data" in out) is not binary


def test_rest_binary_wire_format(server, client):
    """The binary extension byte for byte: header length, binary_data_size, binary_data_output."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.zeros((2, 3), np.float32)
    header = (b'{"id":"q","inputs":[{"name":"input","datatype":"FP32","shape":[2,3],'
              b'"parameters":{"binary_data_size":24}},{"name":"target","datatype":"FP32","shape":[2,3],'
              b'"data":[0,0,0,0,0,0]}],"parameters":{"binary_data_output":true,"reduction":"sum"}}')
    r = httpx.post(f"{server.http_base}/v2/models/mse/infer", content=header + x.tobytes(),
                   headers={"Inference-Header-Content-Length": str(len(header)),
                            "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    n = int(r.headers["Inference-Header-Content-Length"])
    import json

    doc = json.loads(r.content[:n])
    assert doc["id"] == "q" and doc["model_name"] == "mse"
    blobs, offset = {}, n
    for out in doc["outputs"]:
        size = out["parameters"]["binary_data_size"]
        blobs[out["name"]] = np.frombuffer(r.content[offset:offset + size], np.float32).reshape(out["shape"])
        offset += size
    assert offset == len(r.content)
    native = client.evaluate("mse", {"input": x, "target": y}, {"reduction": "sum"})
    np.testing.assert_array_equal(blobs["loss"], native.loss)
    np.testing.assert_array_equal(blobs["grad_input"], native.grads["input"])
    # a binary_data_size that does not match the shape, and unclaimed trailing bytes
    bad = header.replace(b'"binary_data_size":24', b'"binary_data_size":20')
    r = httpx.post(f"{server.http_base}/v2/models/mse/infer", content=bad + x.tobytes()[:20],
                   headers={"Inference-Header-Content-Length": str(len(bad))})
    assert r.status_code == 400 and "binary_data_size" in r.json()["error"]
    r = httpx.post(f"{server.http_base}/v2/models/mse/infer", content=header + x.tobytes() + b"xx",
                   headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 400 and "not claimed" in r.json()["error"]


def test_v2_calls_reach_the_observer(grpc_client, http_client, server):
    def count(transport):
        text = httpx.get(f"{server.http_base}/metrics").text
        want = {"transport": transport, "method": "ModelInfer", "loss": "mse", "code": "OK"}
        for labels, value in re.findall(r"^lossd_requests_total\{([^}]*)\} (\S+)$", text, re.M):
            if dict(re.findall(r'(\w+)="([^"]*)"', labels)) == want:
                return float(value)
        return 0.0

    before = count("grpc"), count("rest")
    inputs, params = CASES["mse"]
    grpc_client.infer("mse", grpc_inputs(inputs), parameters=params)
    http_client.infer("mse", http_inputs(inputs, True), parameters=params)
    http_client.infer("mse", http_inputs(inputs, False), parameters=params)
    assert (count("grpc"), count("rest")) == (before[0] + 1, before[1] + 2)
