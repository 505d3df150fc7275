"""Muon (shared_utils.pytorch.muon): the orthogonalised update, its conv-filter reshaping, and SGD groups equal
to torch.optim.SGD."""
import pytest
import torch

from shared_utils.pytorch.muon import Muon, orthogonalize


@pytest.mark.parametrize("shape", [(64, 576), (576, 64), (24, 24)])
def test_newton_schulz_brings_every_singular_value_near_one(shape):
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(shape[0], shape[0], generator=g))
    v, _ = torch.linalg.qr(torch.randn(shape[1], shape[1], generator=g))
    k = min(shape)
    spread = torch.logspace(-3, 2, k)                    # singular values over five decades
    matrix = u[:, :k] @ torch.diag(spread) @ v[:, :k].T
    out = orthogonalize(matrix, steps=5)
    assert out.shape == matrix.shape and out.dtype == matrix.dtype
    s = torch.linalg.svdvals(out)                        # descending, like spread.flip(0)
    within_100x = spread.flip(0) >= spread.max() / 100   # singular values spanning a factor of 100 ...
    assert s[within_100x].min() > 0.7 and s.max() < 1.21, s   # ... end within a factor of 1.7 (measured 0.72-1.20)
    assert torch.all(s[~within_100x] <= s[within_100x].min() + 1e-6)   # the order is kept: no direction flips
    with pytest.raises(ValueError, match="takes a matrix"):
        orthogonalize(torch.ones(2, 2, 2))


def test_a_conv_filter_steps_along_its_orthogonalised_gradient():
    w = torch.nn.Parameter(torch.randn(8, 4, 3, 3))
    w.grad = torch.randn(8, 4, 3, 3)
    before = w.detach().clone()
    Muon([w], lr=0.1, momentum=0.0, normalize_weights=False).step()
    expected = before - 0.1 * orthogonalize(w.grad.reshape(8, -1)).view(8, 4, 3, 3)
    assert torch.allclose(w, expected, atol=1e-6)
    Muon([w], lr=0.0).step()                              # normalize_weights: norm sqrt(out), direction kept
    assert w.norm().item() == pytest.approx(8 ** 0.5, rel=1e-5)
    with pytest.raises(ValueError, match="orthogonalize=False"):
        Muon([torch.nn.Parameter(torch.ones(3))])


def test_sgd_groups_step_as_torch_sgd_and_muon_fits_a_linear_map():
    g = torch.Generator().manual_seed(1)
    a, b = torch.nn.Parameter(torch.randn(5, 3, generator=g)), torch.nn.Parameter(torch.randn(7, generator=g))
    a2, b2 = (torch.nn.Parameter(t.detach().clone()) for t in (a, b))
    ours = Muon([{"params": [a, b], "orthogonalize": False}], lr=0.05, momentum=0.9, weight_decay=1e-3)
    theirs = torch.optim.SGD([a2, b2], lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    for _ in range(5):
        grads = [torch.randn(5, 3, generator=g), torch.randn(7, generator=g)]
        for p, q, grad in zip((a, b), (a2, b2), grads):
            p.grad, q.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
    assert torch.allclose(a, a2, atol=1e-6) and torch.allclose(b, b2, atol=1e-6)
    x = torch.randn(256, 16, generator=g)
    target = x @ torch.randn(16, 8, generator=g)
    w = torch.nn.Parameter(torch.zeros(8, 16))
    opt = Muon([w], lr=0.02, momentum=0.9, normalize_weights=False)
    first = None
    for _ in range(300):
        loss = ((x @ w.T - target) ** 2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first


def test_the_engine_trains_convolution_filters_by_muon_and_the_rest_by_sgd():
    from shared_utils.pytorch.engine import TrainConfig, make_optimizer
    from shared_utils.pytorch.models import FastNet

    model = FastNet((8, 16, 16))
    opt = make_optimizer(model, TrainConfig(optimizer="muon", lr=0.05, momentum=0.85, weight_decay=5e-4))
    filters, rest = opt.param_groups
    assert filters["orthogonalize"] and filters["lr"] == 0.24 and filters["momentum"] == 0.6
    assert not rest["orthogonalize"] and rest["lr"] == 0.05 and rest["weight_decay"] == 5e-4
    assert {id(p) for p in filters["params"]} == {id(p) for p in model.parameters() if p.ndim == 4 and p.requires_grad}
    assert all(p.ndim != 4 for p in rest["params"]) and not any(p is model.stem.weight for g in (filters, rest)
                                                                  for p in g["params"])   # frozen whitening stays
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    again = make_optimizer(model, TrainConfig(optimizer="muon"))
    again.load_state_dict(opt.state_dict())                 # resumable like any torch optimizer
    first = filters["params"][0]
    assert torch.equal(again.state[first]["momentum_buffer"], opt.state[first]["momentum_buffer"])
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="lion")
