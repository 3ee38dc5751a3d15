"""The PyTorch bridge (lossd_client.torch) against a live server in another process.

Gradients that flow back through ``RemoteLoss`` into a small model must equal the ones
PyTorch's own loss produces (float64, so equality is to rounding), for reduced and
unreduced losses, through a short training loop, and on the input's dtype and device.
The server runs in its own process: PyTorch's and Numba's OpenMP pools must not share one.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'lossd-client[torch]')")
F = torch.nn.functional

from lossd_client.torch import RemoteLoss, remote_loss  # noqa: E402


def close(a, b, tol: float = 1e-10) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def model(d_in: int, d_out: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, 8), torch.nn.Tanh(),
                               torch.nn.Linear(8, d_out)).double()


def param_grads(net: torch.nn.Module) -> list:
    return [p.grad.clone() for p in net.parameters()]


def compare(net_factory, remote, local, make_inputs) -> None:
    """Run the same model through the remote and the local loss; compare every grad."""
    outs = []
    for criterion in (remote, local):
        net = net_factory()
        loss = criterion(net, *make_inputs())
        loss.backward()
        outs.append((loss.detach(), param_grads(net)))
    (lr, gr), (ll, gl) = outs
    close(lr, ll)
    for a, b in zip(gr, gl):
        assert b.abs().max() > 0  # the local gradient is not trivially zero
        close(a, b)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_model_grads(client, reduction):
    torch.manual_seed(1)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64)
    crit = RemoteLoss(client, "mse", reduction=reduction)
    compare(lambda: model(5, 3), lambda net, x, y: crit(net(x), y),
            lambda net, x, y: F.mse_loss(net(x), y, reduction=reduction), lambda: (x, y))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_label_smoothing_model_grads(client, smoothing):
    torch.manual_seed(2)
    x = torch.randn(12, 5, dtype=torch.float64)
    labels = torch.randint(0, 4, (12,))
    crit = RemoteLoss(client, "softmax_cross_entropy", label_smoothing=smoothing)
    compare(lambda: model(5, 4), lambda net, x, t: crit(net(x), t),
            lambda net, x, t: F.cross_entropy(net(x), t, label_smoothing=smoothing),
            lambda: (x, labels))


def test_cross_entropy_weight_by_name_is_not_differentiated(client):
    torch.manual_seed(3)
    x = torch.randn(10, 5, dtype=torch.float64)
    labels = torch.randint(0, 4, (10,))
    weight = torch.rand(4, dtype=torch.float64, requires_grad=True)
    crit = RemoteLoss(client, "cross_entropy", label_smoothing=0.2)  # alias resolves
    net = model(5, 4)
    loss = crit(net(x), labels, weight=weight)
    loss.backward()
    assert weight.grad is None  # the loss does not differentiate its class weights
    local_net = model(5, 4)
    local = F.cross_entropy(local_net(x), labels, weight=weight.detach(), label_smoothing=0.2)
    local.backward()
    close(loss.detach(), local.detach())
    for a, b in zip(param_grads(net), param_grads(local_net)):
        close(a, b)


def test_triplet_margin_model_grads(client):
    torch.manual_seed(4)
    a, p, n = (torch.randn(9, 6, dtype=torch.float64) for _ in range(3))
    crit = RemoteLoss(client, "triplet_margin", margin=0.5)
    compare(lambda: model(6, 4), lambda net, a, p, n: crit(net(a), net(p), net(n)),
            lambda net, a, p, n: F.triplet_margin_loss(net(a), net(p), net(n), margin=0.5),
            lambda: (a, p, n))


def test_cosine_embedding_model_grads_float_target_gets_no_grad(client):
    torch.manual_seed(5)
    x1, x2 = torch.randn(10, 6, dtype=torch.float64), torch.randn(10, 6, dtype=torch.float64)
    target = torch.tensor([1.0, -1.0] * 5, dtype=torch.float64, requires_grad=True)
    crit = RemoteLoss(client, "cosine_embedding", margin=0.1)
    compare(lambda: model(6, 4),
            lambda net, a, b, t: crit(input1=net(a), input2=net(b), target=t),
            lambda net, a, b, t: F.cosine_embedding_loss(net(a), net(b), t.detach(), margin=0.1),
            lambda: (x1, x2, target))
    assert target.grad is None  # requires_grad, but the loss does not differentiate labels


@pytest.mark.parametrize("case", ["mse", "triplet", "cross_entropy_kdim", "cosine"])
def test_reduction_none_with_non_ones_cotangent(client, case):
    torch.manual_seed(6)
    d = torch.float64
    if case == "mse":
        ins = [torch.randn(4, 3, 2, dtype=d, requires_grad=True), torch.randn(4, 3, 2, dtype=d,
                                                                               requires_grad=True)]
        crit, local = RemoteLoss(client, "mse", reduction="none"), F.mse_loss
    elif case == "triplet":
        ins = [torch.randn(6, 5, dtype=d, requires_grad=True) for _ in range(3)]
        crit, local = RemoteLoss(client, "triplet_margin", reduction="none"), F.triplet_margin_loss
    elif case == "cosine":
        ins = [torch.randn(6, 5, dtype=d, requires_grad=True) for _ in range(2)]
        ins.append(torch.tensor([1, -1, 1, -1, -1, 1]))
        crit, local = RemoteLoss(client, "cosine_embedding", reduction="none"), F.cosine_embedding_loss
    else:  # (N, C, d1) logits: the cotangent (N, d1) is spread over the class axis
        ins = [torch.randn(3, 4, 5, dtype=d, requires_grad=True), torch.randint(0, 4, (3, 5))]
        crit = RemoteLoss(client, "softmax_cross_entropy", reduction="none", label_smoothing=0.1)

        def local(x, t, reduction):
            return F.cross_entropy(x, t, reduction=reduction, label_smoothing=0.1)
    remote_out = crit(*ins)
    cot = torch.randn(remote_out.shape, dtype=d)
    remote_out.backward(cot)
    remote_grads = [t.grad for t in ins if t.requires_grad]
    twins = [t.detach().clone().requires_grad_(t.requires_grad) for t in ins]
    local_out = local(*twins, reduction="none")
    local_out.backward(cot)
    close(remote_out.detach(), local_out.detach())
    for a, b in zip(remote_grads, [t.grad for t in twins if t.requires_grad]):
        close(a, b)


def test_none_with_shared_input_refuses_non_uniform_cotangent(client):
    torch.manual_seed(7)
    features = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 5, (6,))
    per_sample = RemoteLoss(client, "arcface", reduction="none")(features, weight, labels)
    with pytest.raises(NotImplementedError, match="weight"):
        per_sample.backward(torch.arange(6, dtype=torch.float64))
    # a uniform cotangent is exact for any loss: it equals the summed loss's gradient
    f2, w2 = features.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    (RemoteLoss(client, "arcface", reduction="none")(features, weight, labels) * 3.0).sum().backward()
    (RemoteLoss(client, "arcface", reduction="sum")(f2, w2, labels) * 3.0).backward()
    close(features.grad, f2.grad)
    close(weight.grad, w2.grad)


def test_training_loop_matches_local_step_by_step(client):
    torch.manual_seed(8)
    x = torch.randn(32, 5, dtype=torch.float64)
    labels = torch.randint(0, 3, (32,))
    nets = [model(5, 3, seed=9), model(5, 3, seed=9)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.5, momentum=0.9) for n in nets]
    crit = RemoteLoss(client, "softmax_cross_entropy", label_smoothing=0.05)
    losses = []
    for _ in range(6):
        step = []
        for net, opt, fn in zip(nets, opts, (crit, lambda z, t: F.cross_entropy(z, t, label_smoothing=0.05))):
            opt.zero_grad()
            loss = fn(net(x), labels)
            loss.backward()
            opt.step()
            step.append(loss.item())
        assert step[0] == pytest.approx(step[1], rel=1e-9, abs=1e-12)
        for p, q in zip(*(n.parameters() for n in nets)):
            close(p.detach(), q.detach(), tol=1e-9)
        losses.append(step[0])
    assert losses[-1] < losses[0]  # it did train


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_preserved(client, dtype):
    x = torch.randn(5, 3, dtype=dtype, requires_grad=True)
    y = torch.randn(5, 3, dtype=dtype)
    loss = remote_loss(client, "mse", {"input": x, "target": y})
    assert loss.dtype == dtype and loss.device == x.device and loss.dim() == 0
    loss.backward()
    assert x.grad.dtype == dtype and x.grad.device == x.device and x.grad.shape == x.shape
    assert y.grad is None  # differentiable, but it did not require a gradient
    expected = 2 * (x.detach() - y) / x.numel()
    close(x.grad, expected, tol=1e-6 if dtype == torch.float32 else 1e-12)


def test_non_contiguous_input_and_no_grad_mode(client):
    base = torch.randn(6, 4, dtype=torch.float64)
    x = base.t()  # non-contiguous view
    y = torch.zeros(4, 6, dtype=torch.float64)
    with torch.no_grad():
        loss = RemoteLoss(client, "mse", reduction="sum")(x, y)
    assert not loss.requires_grad
    close(loss, (x ** 2).sum())


def test_sdk_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import lossd_client\n"
            "try:\n    import lossd_client.torch\nexcept ImportError as e:\n    print('hint:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'lossd-client[torch]'" in out.stdout
    plain = subprocess.run([sys.executable, "-c", "import sys, lossd_client; print('torch' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "False"
