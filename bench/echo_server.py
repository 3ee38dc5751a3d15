"""The transport ceiling: a bare gRPC echo of one ``bytes`` field, in the same grpcio (aio)
and with the same message-size options as lossd. The message is the well-known
``google.protobuf.BytesValue`` (exactly one bytes field), so no proto of our own is needed.
``EchoRaw`` answers with the request's bytes as they came (no protobuf parse, no copy of
ours): the ceiling of the transport alone.

    python -m bench.echo_server [--port 0]     # prints "echo listening on 127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio

import grpc
import grpc.aio
from google.protobuf.wrappers_pb2 import BytesValue

METHOD = "/bench.Echo/Echo"
RAW_METHOD = "/bench.Echo/EchoRaw"
MIB = 1024 * 1024


async def _echo(request: BytesValue, context: grpc.aio.ServicerContext) -> BytesValue:
    return BytesValue(value=request.value)


async def _echo_raw(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def serve(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 320 * MIB),
                                      ("grpc.max_send_message_length", 320 * MIB),
                                      ("grpc.so_reuseport", 0)])
    handler = grpc.unary_unary_rpc_method_handler(
        _echo, request_deserializer=BytesValue.FromString, response_serializer=BytesValue.SerializeToString)
    raw = grpc.unary_unary_rpc_method_handler(_echo_raw)  # bytes in, the same bytes out
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": handler, "EchoRaw": raw}),))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"echo listening on 127.0.0.1:{bound}", flush=True)
    await server.wait_for_termination()


def stub(channel: grpc.Channel):
    """A callable ``echo(payload: bytes, timeout) -> bytes`` on a sync channel."""
    call = channel.unary_unary(METHOD, request_serializer=BytesValue.SerializeToString,
                               response_deserializer=BytesValue.FromString)
    return lambda payload, timeout=None: call(BytesValue(value=payload), timeout=timeout).value


def raw_stub(channel: grpc.Channel):
    """A callable ``echo(serialized: bytes, timeout) -> bytes`` of EchoRaw: serialized bytes
    out, the same bytes back, parsed by nobody (the transport floor)."""
    call = channel.unary_unary(RAW_METHOD)
    return lambda serialized, timeout=None: call(serialized, timeout=timeout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
