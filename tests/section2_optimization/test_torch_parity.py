"""Layers, losses, optimizers and schedules agree with PyTorch in float64."""
import numpy as np
import pytest

from section2_optimization import layers, losses, optim

torch = pytest.importorskip("torch")
F = torch.nn.functional
RNG = np.random.default_rng(0)


def t(a, grad=True):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("name, torch_fn", [
    ("relu", F.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("gelu", F.gelu),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.01)),
])
def test_activations_forward_backward(name, torch_fn):
    x = RNG.standard_normal((4, 5)) * 3
    layer = layers.ACTIVATIONS[name]()
    out = layer.forward(x)
    g = RNG.standard_normal(out.shape)
    gx = layer.backward(g)
    xt = t(x)
    ot = torch_fn(xt)
    ot.backward(t(g, False))
    np.testing.assert_allclose(out, ot.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_linear_and_batchnorm_match_torch():
    x = RNG.standard_normal((8, 5))
    model = layers.Sequential(layers.Linear(5, 4, rng=np.random.default_rng(0), dtype=np.float64),
                              layers.BatchNorm1d(4, dtype=np.float64))
    ref = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4)).double()
    with torch.no_grad():
        ref[0].weight.copy_(torch.tensor(model[0].weight.data.T))  # torch stores (out, in)
        ref[0].bias.copy_(torch.tensor(model[0].bias.data))
    g = RNG.standard_normal((8, 4))
    for train in (True, False):
        ref.train(train)
        xt = t(x)
        out_ref = ref(xt)
        out_ref.backward(t(g, False))
        out = model.forward(x, train)
        gx = model.backward(g)
        np.testing.assert_allclose(out, out_ref.detach().numpy(), atol=1e-10)
        np.testing.assert_allclose(gx, xt.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(model[0].weight.grad.T, ref[0].weight.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(model[1].weight.grad, ref[1].weight.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(model[1].running_var, ref[1].running_var.numpy(), atol=1e-12)
        ref.zero_grad()


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_torch(smoothing):
    logits, labels = RNG.standard_normal((6, 5)), RNG.integers(0, 5, 6)
    loss, grad = losses.softmax_cross_entropy(logits, labels, label_smoothing=smoothing)
    lt = t(logits)
    ref = F.cross_entropy(lt, torch.tensor(labels), label_smoothing=smoothing)
    ref.backward()
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(grad, lt.grad.numpy(), atol=1e-12)


def test_bce_and_mse_match_torch():
    z, y = RNG.standard_normal((7, 1)) * 10, RNG.integers(0, 2, (7, 1))
    loss, grad = losses.bce_with_logits(z, y)
    zt = t(z)
    ref = F.binary_cross_entropy_with_logits(zt, torch.tensor(y, dtype=torch.float64))
    ref.backward()
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), atol=1e-12)
    loss, grad = losses.sigmoid_mse(z, y)
    zt = t(z)
    ref = F.mse_loss(torch.sigmoid(zt), torch.tensor(y, dtype=torch.float64))
    ref.backward()
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), atol=1e-12)
    p, q = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    loss, grad = losses.mse(p, q)
    pt = t(p)
    ref = F.mse_loss(pt, torch.tensor(q))
    ref.backward()
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(grad, pt.grad.numpy(), atol=1e-12)


# ------------------------------------------------------------------ optimizers and schedules
OPTIMIZER_CASES = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-2}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 1e-3}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1, "eps": 1e-6}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.3}),
    ("adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.01}),
    ("adamw", {"lr": 0.05, "amsgrad": True, "betas": (0.5, 0.9)}),
]
TORCH_OPTIMIZERS = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
                    "adamw": torch.optim.AdamW}


def problem():
    """A small least-squares-plus-tanh regression both sides can run identically."""
    rng = np.random.default_rng(42)
    return rng.standard_normal((32, 3)), rng.standard_normal((32, 2)), rng.standard_normal((3, 2)), rng.standard_normal(2)


def run_numpy(name, kwargs, schedule=None, steps=100):
    x, y, w0, b0 = problem()
    lin = layers.Linear(3, 2, dtype=np.float64)
    lin.weight.data[...] = w0
    lin.bias.data[...] = b0
    model = layers.Sequential(lin, layers.Tanh())
    opt = optim.OPTIMIZERS[name](model.parameters(), **kwargs)
    sched = schedule[0](opt) if schedule else None
    lrs = []
    for _ in range(steps):
        _, grad = losses.mse(model.forward(x), y)
        model.backward(grad)
        lrs.append(opt.lr)
        opt.step()
        if sched:
            sched.step()
    return lin.weight.data, lin.bias.data, lrs


def run_torch(name, kwargs, schedule=None, steps=100):
    x, y, w0, b0 = problem()
    w, b = t(w0), t(b0)
    opt = TORCH_OPTIMIZERS[name]([w, b], **kwargs)
    sched = schedule[1](opt) if schedule else None
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(torch.tanh(torch.tensor(x) @ w + b), torch.tensor(y))
        loss.backward()
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched:
            sched.step()
    return w.detach().numpy(), b.detach().numpy(), lrs


@pytest.mark.parametrize("name, kwargs", OPTIMIZER_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZER_CASES)])
def test_optimizer_matches_torch_after_100_steps(name, kwargs):
    w, b, _ = run_numpy(name, kwargs)
    wt, bt, _ = run_torch(name, kwargs)
    # centred RMSprop divides by sqrt(E[g^2] - E[g]^2), a difference of near-equal numbers that
    # magnifies last-bit rounding differences over 100 steps; everything else agrees to 1e-10
    rtol = 1e-7 if kwargs.get("centered") else 1e-10
    np.testing.assert_allclose(w, wt, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(b, bt, rtol=rtol, atol=1e-12)
    assert not np.allclose(w, problem()[2]), "the weights moved"


S = torch.optim.lr_scheduler
SCHEDULES = {
    "step": (lambda o: optim.StepLR(o, step_size=30, gamma=0.5), lambda o: S.StepLR(o, step_size=30, gamma=0.5)),
    "exponential": (lambda o: optim.ExponentialLR(o, gamma=0.97), lambda o: S.ExponentialLR(o, gamma=0.97)),
    "cosine": (lambda o: optim.CosineAnnealingLR(o, T_max=100, eta_min=1e-4),
               lambda o: S.CosineAnnealingLR(o, T_max=100, eta_min=1e-4)),
    "warmup": (lambda o: optim.LinearLR(o, start_factor=0.1, total_iters=20),
               lambda o: S.LinearLR(o, start_factor=0.1, total_iters=20)),
    "onecycle": (lambda o: optim.OneCycleLR(o, max_lr=0.05, total_steps=100),
                 lambda o: S.OneCycleLR(o, max_lr=0.05, total_steps=100)),
    "onecycle-linear": (lambda o: optim.OneCycleLR(o, max_lr=0.05, total_steps=100, anneal_strategy="linear",
                                                   pct_start=0.25),
                        lambda o: S.OneCycleLR(o, max_lr=0.05, total_steps=100, anneal_strategy="linear",
                                               pct_start=0.25)),
}


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("name, kwargs", [("sgd", {"lr": 0.05, "momentum": 0.9}), ("adam", {"lr": 0.01})])
def test_schedules_match_torch(schedule, name, kwargs):
    w, b, lrs = run_numpy(name, kwargs, SCHEDULES[schedule])
    wt, bt, lrs_t = run_torch(name, kwargs, SCHEDULES[schedule])
    np.testing.assert_allclose(lrs, lrs_t, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(w, wt, rtol=1e-9, atol=1e-12)
    assert len(set(np.round(lrs, 12))) > 1, "the schedule changed the learning rate"


def test_stable_cross_entropy_for_huge_logits():
    loss, grad = losses.softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([0]))
    assert loss == 0.0 and np.isfinite(grad).all()


@pytest.mark.parametrize("strategy", ["cosine", "Cos", "exp"])
def test_onecycle_refuses_an_unknown_anneal_strategy_as_torch_does(strategy):
    lin = layers.Linear(3, 2, dtype=np.float64)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear'"):
        optim.OneCycleLR(optim.SGD(lin.parameters(), lr=0.1, momentum=0.9), max_lr=0.1, total_steps=10,
                         anneal_strategy=strategy)
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear'"):
        S.OneCycleLR(torch.optim.SGD([w], lr=0.1, momentum=0.9), max_lr=0.1, total_steps=10,
                     anneal_strategy=strategy)
