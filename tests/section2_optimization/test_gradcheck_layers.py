"""Every layer and loss passes a float64 gradient check (relative error < 1e-6)."""
import numpy as np
import pytest

from section2_optimization import finite_differences, layers, losses

RNG = np.random.default_rng(0)


def build(name):
    rng = np.random.default_rng(1)
    return {
        "linear": lambda: layers.Linear(5, 4, rng=rng, dtype=np.float64),
        "relu": layers.ReLU,
        "leaky_relu": lambda: layers.LeakyReLU(0.1),
        "sigmoid": layers.Sigmoid,
        "tanh": layers.Tanh,
        "gelu": layers.GELU,
        "batchnorm": lambda: layers.BatchNorm1d(5, dtype=np.float64),
        "flatten": layers.Flatten,
    }[name]()


def inputs(name):
    x = RNG.standard_normal((6, 5))
    if name in ("relu", "leaky_relu"):
        x[np.abs(x) < 1e-3] = 0.5  # keep finite differences away from the kink
    if name == "flatten":
        x = RNG.standard_normal((3, 2, 2, 2))
    return x


@pytest.mark.parametrize("name", ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "batchnorm", "flatten"])
@pytest.mark.parametrize("train", [True, False])
def test_layer_gradients(name, train):
    layer = build(name)
    if name == "batchnorm" and not train:
        layer.running_mean[:] = RNG.standard_normal(5)
        layer.running_var[:] = RNG.uniform(0.5, 2.0, 5)
    results = finite_differences.check_module(layer, inputs(name), train=train)
    for r in results:
        assert r.rel_error < 1e-6, r


def test_dropout_gradient_with_a_fixed_mask():
    layer = layers.Dropout(0.4, seed=3)
    results = finite_differences.check_module(layer, RNG.standard_normal((8, 6)), train=True,
                                     before_forward=lambda: layer.reseed(3))
    assert all(r.rel_error < 1e-6 for r in results), results


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_gradient(smoothing):
    r = finite_differences.check_loss(losses.softmax_cross_entropy, RNG.standard_normal((5, 4)), np.array([0, 3, 1, 2, 3]),
                             label_smoothing=smoothing)
    assert r.rel_error < 1e-6, r


def test_bce_and_mse_gradients():
    r = finite_differences.check_loss(losses.bce_with_logits, RNG.standard_normal((6, 1)) * 3, RNG.integers(0, 2, (6, 1)))
    assert r.rel_error < 1e-6, r
    r = finite_differences.check_loss(losses.mse, RNG.standard_normal((6, 2)), RNG.standard_normal((6, 2)))
    assert r.rel_error < 1e-6, r
    r = finite_differences.check_loss(losses.sigmoid_mse, RNG.standard_normal((6, 1)) * 2, RNG.integers(0, 2, (6, 1)))
    assert r.rel_error < 1e-6, r


def test_whole_network_gradient_in_train_mode():
    model = layers.mlp([4, 6, 5, 3], activation="tanh", batchnorm=True, dropout=0.2, seed=0, dtype=np.float64)
    dropouts = [l for l in model if isinstance(l, layers.Dropout)]

    def fix_masks():
        for i, d in enumerate(dropouts):
            d.reseed(i)

    results = finite_differences.check_network(model, losses.softmax_cross_entropy, RNG.standard_normal((7, 4)),
                                      np.array([0, 1, 2, 0, 1, 2, 0]), before_forward=fix_masks)
    assert len(results) == len(model.parameters())
    assert max(r.rel_error for r in results) < 1e-6, results


def test_check_catches_a_wrong_backward():
    class WrongTanh(layers.Tanh):
        def backward(self, grad_out):
            return grad_out * (1 - self._out)  # forgot the square

    results = finite_differences.check_module(WrongTanh(), RNG.standard_normal((4, 3)))
    assert results[0].rel_error > 1e-2


def test_eval_mode_is_deterministic_and_uses_running_stats():
    x = RNG.standard_normal((50, 3)) * 2 + 5
    bn = layers.BatchNorm1d(3, dtype=np.float64, momentum=1.0)
    out = bn.forward(x, train=True)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, x.mean(0))
    np.testing.assert_allclose(bn.running_var, x.var(0, ddof=1))
    single = bn.forward(x[:1], train=False)  # one example works in eval mode
    np.testing.assert_allclose(single, (x[:1] - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + 1e-5))
    with pytest.raises(ValueError, match="at least 2 examples"):
        bn.forward(x[:1], train=True)
    drop = layers.Dropout(0.5)
    np.testing.assert_array_equal(drop.forward(x, train=False), x)
    kept = drop.forward(np.ones((2000, 10)), train=True)
    assert set(np.unique(kept)) == {0.0, 2.0} and abs(kept.mean() - 1.0) < 0.05


def test_state_dict_round_trip_and_mismatch():
    model = layers.mlp([4, 8, 3], batchnorm=True, seed=0)
    other = layers.mlp([4, 8, 3], batchnorm=True, seed=1)
    assert set(model.state_dict()) == {"0.weight", "1.weight", "1.bias", "1.running_mean",
                                       "1.running_var", "3.weight", "3.bias"}
    other.load_state_dict(model.state_dict())
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x, False), other.forward(x, False))
    with pytest.raises(ValueError, match="shape"):
        layers.mlp([4, 9, 3], batchnorm=True).load_state_dict(model.state_dict())
