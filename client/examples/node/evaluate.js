#!/usr/bin/env node
// Evaluate lossd losses from Node.js: @grpc/grpc-js + @grpc/proto-loader, loading the
// wire contract from proto/ at run time (no generated code).
//
//   npm ci                                   # once, in this folder
//   node evaluate.js 127.0.0.1:50051         # or LOSSD_TARGET=host:port node evaluate.js
//
// Prints one JSON line per call: the loss id, the loss and the gradients as plain numbers.
// Tensors travel as raw little-endian bytes (a Float32Array's buffer), never as lists.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', '..', 'proto');
const definition = protoLoader.loadSync('lossd/v1/lossd.proto', {
  includeDirs: [PROTO_ROOT],
  keepCase: true, // field names exactly as in the .proto (request_id, not requestId)
  enums: String, // DTYPE_FLOAT32 rather than 1
  longs: Number, // int64 shapes as numbers
  defaults: true,
  oneofs: true,
});
const lossd = grpc.loadPackageDefinition(definition).lossd.v1;

// dtype name -> [TypedArray, wire enum]; little-endian is what x86/ARM Node uses natively.
const DTYPES = {
  float32: [Float32Array, 'DTYPE_FLOAT32'],
  float64: [Float64Array, 'DTYPE_FLOAT64'],
  int32: [Int32Array, 'DTYPE_INT32'],
  int64: [BigInt64Array, 'DTYPE_INT64'],
};
const BY_WIRE = Object.fromEntries(Object.values(DTYPES).map(([T, wire]) => [wire, T]));

function tensor(dtype, shape, values) {
  const [T, wire] = DTYPES[dtype];
  const array = dtype === 'int64' ? T.from(values, BigInt) : T.from(values);
  return { dtype: wire, shape, data: Buffer.from(array.buffer, array.byteOffset, array.byteLength) };
}

function decode(t) {
  const T = BY_WIRE[t.dtype];
  // copy into an aligned buffer: the received Buffer may start at any offset
  const bytes = Uint8Array.from(t.data);
  return Array.from(new T(bytes.buffer, 0, bytes.byteLength / T.BYTES_PER_ELEMENT), Number);
}

function param(name, value) {
  if (typeof value === 'boolean') return { name, value: { bool_value: value } };
  if (typeof value === 'string') return { name, value: { string_value: value } };
  if (Number.isInteger(value) && !String(value).includes('.')) return { name, value: { int_value: value } };
  return { name, value: { double_value: value } };
}

function evaluate(client, loss, inputs, params = {}) {
  const request = {
    loss,
    inputs: Object.entries(inputs).map(([name, t]) => ({ name, tensor: t })),
    params: Object.entries(params).map(([name, v]) => param(name, v)),
  };
  return new Promise((resolve, reject) => {
    client.Evaluate(request, { deadline: Date.now() + 30000 }, (err, response) => {
      if (err) return reject(err);
      const grads = {};
      for (const [name, t] of Object.entries(response.grads)) grads[name] = decode(t);
      resolve({ loss_id: response.loss_id, loss: decode(response.loss), grads });
    });
  });
}

async function main() {
  const target = process.argv[2] || process.env.LOSSD_TARGET || '127.0.0.1:50051';
  const client = new lossd.LossService(target, grpc.credentials.createInsecure());
  try {
    // mean squared error of [1, 2, 3, 4] against zeros: 7.5, gradient x / 2
    const mse = await evaluate(client, 'mse', {
      input: tensor('float32', [2, 2], [1, 2, 3, 4]),
      target: tensor('float32', [2, 2], [0, 0, 0, 0]),
    });
    console.log(JSON.stringify(mse));
    // cross entropy of logits against class indices, with a double parameter
    const ce = await evaluate(client, 'softmax_cross_entropy', {
      input: tensor('float64', [2, 3], [2.0, 0.5, -1.0, 0.1, 0.2, 3.0]),
      target: tensor('int64', [2], [0, 2]),
    }, { label_smoothing: 0.1 });
    console.log(JSON.stringify(ce));
    // errors carry a gRPC status code and a message
    try {
      await evaluate(client, 'no_such_loss', { input: tensor('float32', [1], [0]) });
    } catch (err) {
      console.log(JSON.stringify({ error: grpc.status[err.code], message: err.details }));
    }
  } finally {
    client.close();
  }
}

main().catch((err) => {
  console.error(`lossd example failed: ${err.message}`);
  process.exit(1);
});
