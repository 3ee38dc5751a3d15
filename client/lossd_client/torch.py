"""PyTorch bridge: a lossd loss as a differentiable ``torch.nn.Module``.

>>> from lossd_client import LossClient
>>> from lossd_client.torch import RemoteLoss
>>> client = LossClient("127.0.0.1:50051")
>>> criterion = RemoteLoss(client, "softmax_cross_entropy", label_smoothing=0.1)
>>> loss = criterion(model(x), labels)      # inputs in the loss's order, or by name
>>> loss.backward()                         # gradients computed by the server

Install with ``pip install 'lossd-client[torch]'``; the rest of the SDK never imports
torch. The forward pass sends every tensor once (a CPU tensor is viewed as NumPy
without a copy; ``tobytes`` is the one copy the wire needs) and asks the server for the
gradients of the inputs that require one and that the loss can differentiate; the
backward pass scales them by the incoming gradient and returns them on each input's
device and dtype. Inputs the loss does not differentiate (class indices, labels,
weights) get no gradient.

Cotangents. The server returns, for every reduction, the gradient of the sum of the
loss elements it returned (for ``mean``/``sum``/``batchmean`` that is the scalar
loss). So a scalar loss, or an unreduced loss whose incoming gradient is the same
everywhere (``loss.sum().backward()``), is exact for every loss. With
``reduction="none"`` and a non-uniform incoming gradient, each input's gradient is the
server's gradient scaled per loss element, which is exact when the loss elements depend
on disjoint slices of that input: the input has the loss's shape (elementwise losses),
the loss's shape followed by feature dimensions (``(N, D)`` -> ``(N,)``), or the
loss's shape with a class axis at dimension 1 (``(N, C, d1..dk)`` -> ``(N, d1..dk)``).
Inputs shared across loss elements (a ``(C, D)`` class-weight matrix) and losses whose
elements couple samples (batch-hard triplet mining) raise ``NotImplementedError`` in
that case instead of returning a wrong gradient; reduce the loss in PyTorch with
``reduction="none"`` and a uniform weight, or use ``sum``/``mean``.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("lossd_client.torch needs PyTorch: pip install 'lossd-client[torch]'") from exc

__all__ = ["RemoteLoss", "remote_loss"]

#: losses whose unreduced elements depend on other samples of the batch (mining).
BATCH_COUPLED = frozenset({"triplet_batch_hard"})


class _Schema:
    """What the bridge needs to know about one loss (from ListLosses, fetched once)."""

    def __init__(self, loss_id: str, inputs: list[str], differentiable: set[str],
                 default_reduction: str) -> None:
        self.id = loss_id
        self.inputs = inputs
        self.differentiable = differentiable
        self.default_reduction = default_reduction


def _lookup_schema(client: Any, loss: str) -> _Schema:
    for s in client.list_losses():
        if s.id == loss or loss in s.aliases:
            return _Schema(s.id, [i.name for i in s.inputs],
                           {i.name for i in s.inputs if i.differentiable}, s.default_reduction)
    from lossd_client.errors import NotFound

    raise NotFound(f"the server has no loss {loss!r}")


def _to_numpy(value: Any) -> Any:
    """A NumPy view of a tensor (no copy for a contiguous CPU tensor)."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.device.type != "cpu":
            value = value.cpu()
        return value.numpy()
    return value


def _as_tensor(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``array`` (possibly a read-only view of response bytes) as a tensor like ``like``.

    The view is never written: every caller derives a new tensor from it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the given NumPy array is not writable"
        tensor = torch.from_numpy(np.asarray(array))
    return tensor.to(device=like.device, dtype=like.dtype)


def _broadcast_cotangent(grad_out: torch.Tensor, input_shape: torch.Size, name: str,
                         loss_id: str) -> torch.Tensor:
    """The incoming gradient (loss-shaped) reshaped to broadcast against an input."""
    loss_shape = tuple(grad_out.shape)
    shape = tuple(input_shape)
    if loss_id not in BATCH_COUPLED:
        if shape == loss_shape:
            return grad_out
        k = len(loss_shape)
        if k and shape[:k] == loss_shape:  # (N,) against (N, D...): per-row
            return grad_out.reshape(loss_shape + (1,) * (len(shape) - k))
        if k and len(shape) == k + 1 and shape[0] == loss_shape[0] and shape[2:] == loss_shape[1:]:
            return grad_out.unsqueeze(1)  # class axis at dimension 1
    raise NotImplementedError(
        f"{loss_id} with reduction 'none': the gradient of {name!r} {list(shape)} under a "
        f"non-uniform incoming gradient of shape {list(loss_shape)} cannot be formed from the "
        f"server's gradient (its loss elements share that input); use a reduced loss or a "
        f"uniform incoming gradient")


class _RemoteLossFunction(torch.autograd.Function):
    """forward: one Evaluate call (loss and the needed gradients); backward: scaling."""

    @staticmethod
    def forward(ctx: Any, client: Any, schema: _Schema, names: tuple[str, ...],
                params: Mapping[str, Any], timeout: float | None, *values: Any) -> torch.Tensor:
        wanted = [n for n, v in zip(names, values)
                  if isinstance(v, torch.Tensor) and v.requires_grad and n in schema.differentiable]
        inputs = {n: _to_numpy(v) for n, v in zip(names, values)}
        result = client.evaluate(schema.id, inputs, params, grads=wanted, timeout=timeout)
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        floats = [t for t in tensors if t.is_floating_point()]
        like = (floats or tensors)[0] if tensors else torch.empty(0, dtype=torch.float64)
        ctx.loss_id = schema.id
        ctx.names = names
        ctx.server_grads = {n: result.grads[n] for n in wanted}
        ctx.likes = [v if isinstance(v, torch.Tensor) else None for v in values]
        return _as_tensor(result.loss, like)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        uniform = grad_out.dim() == 0 or bool((grad_out == grad_out.reshape(-1)[0]).all())
        grads: list[torch.Tensor | None] = []
        for name, like in zip(ctx.names, ctx.likes):
            server = ctx.server_grads.get(name)
            if server is None or like is None:
                grads.append(None)
                continue
            g = _as_tensor(server, like)
            if uniform:
                scale = grad_out.reshape(-1)[0] if grad_out.dim() else grad_out
                grads.append(g * scale.to(device=like.device, dtype=like.dtype))
            else:
                cot = _broadcast_cotangent(grad_out, like.shape, name, ctx.loss_id)
                grads.append(g * cot.to(device=like.device, dtype=like.dtype))
        return (None, None, None, None, None, *grads)


class RemoteLoss(torch.nn.Module):
    """A lossd loss as a module: ``RemoteLoss(client, "mse", reduction="sum")(x, y)``.

    ``client`` is a :class:`lossd_client.LossClient`; ``params`` are the loss's
    hyper-parameters (see ``lossd losses`` or ListLosses). Inputs are passed in the
    loss's input order, or by name (``criterion(input=x, target=y)``); optional inputs
    are passed by name. The schema is fetched from the server once, on first use.
    """

    def __init__(self, client: Any, loss: str, *, timeout: float | None = None, **params: Any) -> None:
        super().__init__()
        self.client = client
        self.loss = loss
        self.params = dict(params)
        self.timeout = timeout
        self._schema: _Schema | None = None

    @property
    def schema(self) -> _Schema:
        if self._schema is None:
            self._schema = _lookup_schema(self.client, self.loss)
        return self._schema

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        schema = self.schema
        if len(args) > len(schema.inputs):
            raise TypeError(f"{schema.id} takes at most {len(schema.inputs)} inputs "
                            f"({', '.join(schema.inputs)}), got {len(args)}")
        named = dict(zip(schema.inputs, args))
        for key, value in kwargs.items():
            if key in named:
                raise TypeError(f"input {key!r} given twice")
            named[key] = value
        names = tuple(named)
        return _RemoteLossFunction.apply(self.client, schema, names, self.params, self.timeout,
                                         *named.values())

    def extra_repr(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"{self.loss!r}{params}"


def remote_loss(client: Any, loss: str, inputs: Mapping[str, Any], **params: Any) -> torch.Tensor:
    """Functional form: ``remote_loss(client, "mse", {"input": x, "target": y})``."""
    return RemoteLoss(client, loss, **params)(**inputs)
