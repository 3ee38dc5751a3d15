"""MLServer custom runtime: MSE of ``input`` vs ``target`` with both gradients (the peer
of lossd's ``mse``; runs in the separate peer venv, never imported by lossd)."""

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class MSERuntime(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        arrays = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        x = arrays["input"].astype(np.float32, copy=False).ravel()
        y = arrays["target"].astype(np.float32, copy=False).ravel()
        d = x - y
        loss = np.array([np.mean(d * d, dtype=np.float64)], dtype=np.float32)
        g = (np.float32(2.0 / d.size) * d).astype(np.float32)
        return InferenceResponse(model_name=self.name, outputs=[
            NumpyCodec.encode_output("loss", loss),
            NumpyCodec.encode_output("grad_input", g),
            NumpyCodec.encode_output("grad_target", -g),
        ])
