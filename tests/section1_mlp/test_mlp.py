"""The hand-written MLP: gradients equal finite differences and PyTorch's; it learns real digits."""
import numpy as np
import pytest

from section1_mlp.mlp import MLP, PlainSGD
from section2_optimization import finite_differences
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.trainer import evaluate, fit
from shared_utils import data

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backward_matches_finite_differences(activation):
    model = MLP([5, 7, 6, 3], activation=activation, seed=1, dtype=np.float64)
    x, y = RNG.standard_normal((8, 5)), RNG.integers(0, 3, 8)
    _, grad = softmax_cross_entropy(model.forward(x), y)
    grad_x = model.backward(grad)
    tensors = [(f"w{i}", w, model.grad_w[i]) for i, w in enumerate(model.weights)]
    tensors += [(f"b{i}", b, model.grad_b[i]) for i, b in enumerate(model.biases)]
    tensors.append(("x", x, grad_x))
    for name, array, analytic in tensors:
        idx, numeric = finite_differences.numeric_gradient(lambda: softmax_cross_entropy(model.forward(x), y)[0], array)
        err = finite_differences.relative_error(analytic.reshape(-1)[idx], numeric)
        assert err < 1e-6, (name, err)


def test_matches_pytorch_forward_and_backward():
    torch = pytest.importorskip("torch")
    model = MLP([4, 6, 3], activation="tanh", seed=0, dtype=np.float64)
    x, y = RNG.standard_normal((5, 4)), RNG.integers(0, 3, 5)
    loss, grad = softmax_cross_entropy(model.forward(x), y)
    model.backward(grad)
    w0, w1 = (torch.tensor(w, requires_grad=True) for w in model.weights)
    b0, b1 = (torch.tensor(b, requires_grad=True) for b in model.biases)
    ref = torch.nn.functional.cross_entropy(torch.tanh(torch.tensor(x) @ w0 + b0) @ w1 + b1, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    for ours, theirs in zip(model.grad_w + model.grad_b, (w0, w1, b0, b1)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), atol=1e-12)


def test_checkpoint_round_trip():
    model = MLP([4, 5, 2], activation="sigmoid", seed=3)
    clone = MLP.from_state_dict(model.state_dict())
    assert clone.activation == "sigmoid" and clone.sizes == [4, 5, 2]
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x), clone.forward(x))
    with pytest.raises(ValueError, match="not an MLP checkpoint"):
        MLP.from_state_dict({"w0": np.zeros((4, 5))})


def test_reaches_95_percent_on_real_digits():
    ds = data.digits(val_size=200, seed=0)
    train, val, test = (ds.arrays(s, flatten=True) for s in ("train", "val", "test"))
    model = MLP([64, 64, 10], activation="relu", seed=0)
    fit(model, softmax_cross_entropy, PlainSGD(model, 0.05), train, val, epochs=30, batch_size=32, seed=0)
    _, test_acc = evaluate(model, softmax_cross_entropy, *test)
    assert test_acc >= 0.95, test_acc
