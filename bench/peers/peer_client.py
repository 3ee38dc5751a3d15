"""Load generator for the MLServer peer (runs in the peer venv: tritonclient over gRPC).

    python peer_client.py HOST:PORT N_FLOATS CALLS  -> one JSON line of per-call seconds
"""

import json
import sys
import time

import numpy as np
import tritonclient.grpc as tc


def main() -> None:
    url, n, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    client = tc.InferenceServerClient(url)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)

    def call():
        inputs = [tc.InferInput("input", [n], "FP32"), tc.InferInput("target", [n], "FP32")]
        inputs[0].set_data_from_numpy(x)
        inputs[1].set_data_from_numpy(y)
        outputs = [tc.InferRequestedOutput(k) for k in ("loss", "grad_input", "grad_target")]
        result = client.infer("mse", inputs, outputs=outputs)
        g = result.as_numpy("grad_input")
        assert g.size == n

    call()
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
