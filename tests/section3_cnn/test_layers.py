"""Convolution and pooling: float64 gradient checks, PyTorch parity, loops = im2col."""
import numpy as np
import pytest

from section2_optimization import finite_differences
from section2_optimization.losses import softmax_cross_entropy
from section3_cnn import layers as cl
from section3_cnn.conv_mechanics import conv2d_loops
from section3_cnn.model import build_cnn

RNG = np.random.default_rng(0)
CONV_CASES = [  # (N, C, H, W, F, k, stride, padding)
    (2, 1, 6, 6, 3, 3, 1, 1),
    (2, 3, 7, 6, 4, 3, 1, 0),
    (2, 2, 9, 9, 3, 3, 2, 1),
    (1, 3, 8, 8, 2, 5, 2, 2),
    (2, 4, 5, 7, 2, 1, 1, 0),
    (1, 2, 6, 6, 3, 2, 2, 0),
    (2, 2, 8, 7, 3, (3, 2), (2, 1), (1, 0)),      # (h, w) pairs for kernel, stride and padding
    (1, 3, 7, 9, 2, (1, 3), 1, (0, 2)),
]


def nhwc(x):
    return x.transpose(0, 2, 3, 1)


def nchw(x):
    return x.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"C{c[1]}k{c[5]}s{c[6]}p{c[7]}" for c in CONV_CASES])
def test_conv_gradcheck(case):
    n, c, h, w, f, k, s, p = case
    conv = cl.Conv2D(c, f, k, stride=s, padding=p, rng=np.random.default_rng(1), dtype=np.float64)
    conv.bias.data[:] = RNG.standard_normal(f)
    for r in finite_differences.check_module(conv, RNG.standard_normal((n, h, w, c))):
        assert r.rel_error < 1e-6, r


@pytest.mark.parametrize("pool, k, s", [(cl.MaxPool2D, 2, 2), (cl.MaxPool2D, 3, 2), (cl.MaxPool2D, 2, 1),
                                        (cl.AvgPool2D, 2, 2), (cl.AvgPool2D, 3, 1), (cl.MaxPool2D, (2, 3), (1, 2)),
                                        (cl.AvgPool2D, (3, 2), (2, 1))])
def test_pool_gradcheck(pool, k, s):
    x = RNG.permutation(2 * 8 * 6 * 3).reshape(2, 8, 6, 3) / 10.0  # distinct values: no ties for finite differences
    for r in finite_differences.check_module(pool(k, s), x):
        assert r.rel_error < 1e-6, r


def test_whole_cnn_gradcheck_float64():
    model = build_cnn(channels=(2, 3), hidden=8, image_size=8, seed=0, dtype=np.float64)
    x, y = RNG.standard_normal((3, 1, 8, 8)), np.array([1, 4, 7])
    results = finite_differences.check_network(model, softmax_cross_entropy, x, y, max_entries=40)
    assert len(results) == len(model.parameters())
    assert max(r.rel_error for r in results) < 1e-6, results


torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"C{c[1]}k{c[5]}s{c[6]}p{c[7]}" for c in CONV_CASES])
def test_conv_matches_torch(case):
    n, c, h, w, f, k, s, p = case
    x = RNG.standard_normal((n, c, h, w))
    conv = cl.Conv2D(c, f, k, stride=s, padding=p, rng=np.random.default_rng(2), dtype=np.float64)
    conv.bias.data[:] = RNG.standard_normal(f)
    out = conv.forward(nhwc(x))
    g = RNG.standard_normal(out.shape)
    dx = conv.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(cl.torch_weight_layout(conv.weight.data), requires_grad=True)
    bt = torch.tensor(conv.bias.data, requires_grad=True)
    ref = F.conv2d(xt, wt, bt, stride=s, padding=p)
    ref.backward(torch.tensor(nchw(g)))
    np.testing.assert_allclose(nchw(out), ref.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(nchw(dx), xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(cl.torch_weight_layout(conv.weight.grad), wt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, bt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("name, k, s", [("max", 2, 2), ("max", 3, 2), ("max", 2, 1), ("max", 3, 3),
                                        ("avg", 2, 2), ("avg", 3, 2), ("avg", 2, 1), ("max", (2, 3), (1, 2)),
                                        ("max", (3, 1), (2, 1)), ("avg", (2, 3), (2, 1))])
def test_pools_match_torch_including_ties(name, k, s):
    x = np.round(RNG.standard_normal((2, 3, 8, 6)))  # rounded: many tied maxima
    x[0, 0, :4, :4] = 0.0                             # and whole windows of equal values, like MNIST's background
    layer = cl.MaxPool2D(k, s) if name == "max" else cl.AvgPool2D(k, s)
    out = layer.forward(nhwc(x))
    g = RNG.standard_normal(out.shape)
    dx = layer.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    ref = (F.max_pool2d if name == "max" else F.avg_pool2d)(xt, k, s)
    ref.backward(torch.tensor(nchw(g)))
    np.testing.assert_allclose(nchw(out), ref.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(nchw(dx), xt.grad.numpy(), atol=1e-12)


def test_max_pool_before_relu_is_the_same_network_as_relu_before_pool():
    """build_cnn pools before its ReLUs (max pooling only); swapping them back must change nothing: outputs and
    every gradient equal, with many exact ties (negative windows, zeros) in the activations."""
    fast = build_cnn(channels=(3, 4), hidden=8, image_size=12, seed=5, dtype=np.float64)
    assert [type(layer).__name__ for layer in fast][2:4] == ["MaxPool2D", "ReLU"]
    textbook = build_cnn(channels=(3, 4), hidden=8, image_size=12, seed=5, dtype=np.float64)
    textbook.layers[2:4], textbook.layers[5:7] = textbook.layers[3:1:-1], textbook.layers[6:4:-1]
    x = np.round(RNG.standard_normal((6, 1, 12, 12)))          # integers: tied maxima and exact zeros
    y = RNG.integers(0, 10, 6)
    for model in (fast, textbook):
        _, g = softmax_cross_entropy(model.forward(x), y)
        model.backward(g)
    np.testing.assert_array_equal(fast.forward(x), textbook.forward(x))
    for (name, a), b in zip(fast.named_parameters(), textbook.parameters()):
        np.testing.assert_array_equal(a.grad, b.grad, err_msg=name)
    assert [type(layer).__name__ for layer in build_cnn(pool="avg")][2:4] == ["ReLU", "AvgPool2D"]


def test_window_major_conv_output_is_the_same_network():
    """build_cnn's convolutions hand their training output to the max pool in 2x2-window-major layout
    (pool_order=True); with it switched off the network must compute the same outputs and gradients (input
    gradient too), ties included, and evaluation mode must return the usual (N, H, W, C) maps."""
    fast = build_cnn(channels=(3, 4), hidden=8, image_size=12, seed=5, dtype=np.float64)
    plain = build_cnn(channels=(3, 4), hidden=8, image_size=12, seed=5, dtype=np.float64)
    convs = [layer for layer in plain if isinstance(layer, cl.Conv2D)]
    assert all(conv.pool_order for conv in convs)
    for conv in convs:
        conv.pool_order = False
    x = np.round(RNG.standard_normal((6, 1, 12, 12)))          # integers: tied maxima and exact zeros
    x[:, :, :4] = 0                                            # blank rows: whole windows tie, as in MNIST
    y = RNG.integers(0, 10, 6)
    results = []
    for model in (fast, plain):
        out = model.forward(x)
        _, g = softmax_cross_entropy(out, y)
        results.append((out, model.backward(g)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, atol=1e-13)
    for (name, a), b in zip(fast.named_parameters(), plain.parameters()):
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-12, atol=1e-13, err_msg=name)
    conv = fast[1]
    assert conv.forward(x.transpose(0, 2, 3, 1), train=True).shape == (6, 2, 2, 6, 6, 3)
    assert conv.forward(x.transpose(0, 2, 3, 1), train=False).shape == (6, 12, 12, 3)
    with pytest.raises(ValueError, match="window-major"):
        cl.MaxPool2D(3).forward(np.zeros((1, 2, 2, 3, 3, 1)))


def test_layers_refuse_malformed_sizes():
    for bad in ((2, 2, 2), (0, 1), "3", 2.5):
        with pytest.raises(ValueError, match="kernel"):
            cl.Conv2D(1, 1, bad)
    with pytest.raises(ValueError, match=">= 1"):
        cl.MaxPool2D((2, 0))


def test_whole_cnn_converts_to_and_from_the_equivalent_torch_network():
    """Identical weights, identical outputs and gradients in float64: the layouts (conv weights, Linear
    transposes, the first Linear's (h, w, c) -> (c, h, w) rows) convert exactly."""
    from section3_cnn.model import load_torch_state_dict, torch_state_dict

    model = build_cnn(channels=(3, 5), hidden=16, seed=4, dtype=np.float64)
    for p in model.parameters():                           # non-zero biases, so their layout is tested too
        p.data[...] = RNG.standard_normal(p.data.shape) * 0.3
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(5 * 49, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 10)).double()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in torch_state_dict(model).items()})
    x = RNG.standard_normal((4, 1, 28, 28))
    out = model.forward(x)
    xt = torch.tensor(x, requires_grad=True)
    ref = net(xt)
    np.testing.assert_allclose(out, ref.detach().numpy(), atol=1e-10)
    g = RNG.standard_normal(out.shape)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(model.backward(g), xt.grad.numpy(), atol=1e-10)
    for p in model.parameters():                           # our gradients, converted the way the weights are
        p.data, p.grad = p.grad, p.data
    grads = torch_state_dict(model)
    for name, tensor in net.named_parameters():
        np.testing.assert_allclose(grads[name], tensor.grad.numpy(), atol=1e-10, err_msg=name)
    for p in model.parameters():
        p.data, p.grad = p.grad, p.data
    back = build_cnn(channels=(3, 5), hidden=16, seed=9, dtype=np.float64)
    load_torch_state_dict(back, {k: v.detach().numpy() for k, v in net.state_dict().items()})
    for (name, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_float32_training_dtypes_stay_float32():
    model = build_cnn(seed=0)
    out = model.forward(RNG.standard_normal((4, 1, 28, 28)).astype(np.float32))
    assert out.dtype == np.float32
    model.backward(np.ones_like(out))
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_loop_convolution_equals_im2col(stride, padding):
    x = RNG.standard_normal((2, 3, 9, 8))
    conv = cl.Conv2D(3, 4, 3, stride=stride, padding=padding, rng=np.random.default_rng(3), dtype=np.float64)
    conv.bias.data[:] = RNG.standard_normal(4)
    fast = nchw(conv.forward(nhwc(x)))
    slow = conv2d_loops(x, cl.torch_weight_layout(conv.weight.data), conv.bias.data, stride, padding)
    np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), y> == <x, col2im(y)> for every x, y: the defining property of the backward pass
    x = RNG.standard_normal((2, 7, 6, 3))
    for k, s in ((3, 1), (3, 2), (2, 2)):
        cols = cl.im2col(x, k, k, s)
        y = RNG.standard_normal(cols.shape)
        assert np.sum(cols * y) == pytest.approx(np.sum(x * cl.col2im(y, x.shape, k, k, s)), rel=1e-12)


def test_random_shift_moves_each_image_within_bounds():
    from section3_cnn.augment import random_shift

    x = np.zeros((50, 1, 9, 9), dtype=np.float32)
    x[:, 0, 4, 4] = 1.0                                   # one bright pixel in the centre
    shifted = random_shift(x, np.random.default_rng(0), max_shift=2)
    assert shifted.shape == x.shape and shifted.dtype == np.float32
    rows, cols = np.nonzero(shifted[:, 0].sum(axis=0))
    positions = [tuple(np.argwhere(img[0])[0]) for img in shifted]
    assert all(abs(r - 4) <= 2 and abs(c - 4) <= 2 for r, c in positions)
    assert len(set(positions)) > 10                        # offsets differ from image to image
    np.testing.assert_array_equal(shifted.sum(axis=(1, 2, 3)), 1.0)   # nothing lost or duplicated
    again = random_shift(x, np.random.default_rng(0), max_shift=2)
    np.testing.assert_array_equal(shifted, again)          # seeded


def test_shift_moves_every_image_by_exactly_the_offset_and_fills_the_background():
    from section3_cnn.augment import shift

    x = np.full((2, 1, 5, 6), -0.5, dtype=np.float32)
    x[:, 0, 2, 3] = 1.0
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1), (2, -3)):
        out = shift(x, dy, dx)
        assert out.dtype == np.float32 and out.shape == x.shape
        np.testing.assert_array_equal(np.argwhere(out[:, 0] == 1.0)[:, 1:], [[2 + dy, 3 + dx]] * 2)
        assert np.all(out[out != 1.0] == -0.5)                  # the uncovered border takes the background
    edge = np.zeros((1, 1, 4, 4), dtype=np.float32)
    edge[0, 0, 0, 0] = 1.0
    assert shift(edge, -1, 0).max() == 0.0                    # shifted out of the frame: gone, not wrapped
    with pytest.raises(ValueError, match="out of its frame"):
        shift(edge, 4, 0)


def test_score_averages_the_five_shifted_views_and_threads_do_not_change_it():
    from section2_optimization.losses import log_softmax
    from section3_cnn.augment import TTA_SHIFTS, shift
    from section3_cnn.experiment import score

    model = build_cnn(channels=(4, 8), hidden=16, seed=0)
    x = RNG.standard_normal((300, 1, 28, 28)).astype(np.float32)
    y = RNG.integers(0, 10, 300)
    one = score(model, {"test": (x, y)}, threads=1, tta=True)
    two = score(model, {"test": (x, y)}, threads=2, tta=True)
    views = [np.exp(log_softmax(model.forward(shift(x, dy, dx), train=False))) for dy, dx in TTA_SHIFTS]
    mean = np.mean(views, axis=0)
    assert one["test_acc"] == two["test_acc"] == float((mean.argmax(1) == y).mean())
    assert one["test_acc_single_view"] == float((views[0].argmax(1) == y).mean())
    assert one["test_loss"] == pytest.approx(-np.log(mean[np.arange(300), y]).mean(), rel=1e-5)
    assert one["test_loss"] == pytest.approx(two["test_loss"], rel=1e-6)
    plain = score(model, {"test": (x, y)}, threads=1)
    assert set(plain) == {"test_loss", "test_acc"} and plain["test_acc"] == one["test_acc_single_view"]


@pytest.mark.parametrize("kernel", [2, 4, 0])
def test_build_cnn_refuses_an_even_kernel_with_a_clear_message(kernel):
    from section3_cnn.model import build_cnn

    with pytest.raises(ValueError, match=f"kernel must be an odd size .* got {kernel}"):
        build_cnn(kernel=kernel)


@pytest.mark.parametrize("kernel", [1, 5])
def test_build_cnn_odd_kernels_keep_the_shapes(kernel):
    from section3_cnn.model import build_cnn

    out = build_cnn(kernel=kernel).forward(np.zeros((2, 1, 28, 28), np.float32), train=False)
    assert out.shape == (2, 10)
