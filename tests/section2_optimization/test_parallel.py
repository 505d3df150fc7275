"""DataParallel: a batch split across threads computes what one thread computes (float64, to rounding), and
worker processes compute exactly what threads compute."""
import signal
import threading

import numpy as np
import pytest

from section2_optimization import layers
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.optim import Adam
from section2_optimization.parallel import DataParallel, shard_bounds
from section2_optimization.trainer import fit
from section3_cnn.layers import add_bias
from section3_cnn.model import build_cnn

RNG = np.random.default_rng(0)


def cnn64():
    return build_cnn(seed=3, dtype=np.float64)


def mlp64():
    return layers.mlp([12, 16, 8, 5], seed=3).astype(np.float64)


def batch(model_name, n):
    if model_name == "cnn":
        return RNG.random((n, 1, 28, 28)), RNG.integers(0, 10, n)
    return RNG.standard_normal((n, 12)), RNG.integers(0, 5, n)


@pytest.mark.parametrize("n,shards", [(10, 2), (11, 3), (2, 3), (64, 2), (1, 2)])
def test_shard_bounds_cover_rows_evenly(n, shards):
    bounds = shard_bounds(n, shards)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(hi0 == lo1 for (_, hi0), (lo1, _) in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and len(bounds) == min(n, shards)


@pytest.mark.parametrize("name,make", [("cnn", cnn64), ("mlp", mlp64)])
@pytest.mark.parametrize("threads", [2, 3])
def test_outputs_and_gradients_equal_one_thread(name, make, threads):
    single, model = make(), make()
    x, y = batch(name, 13)
    out1 = single.forward(x)
    _, g1 = softmax_cross_entropy(out1, y)
    dx1 = single.backward(g1)
    with DataParallel(model, threads) as net:
        out = net.forward(x)
        _, g = softmax_cross_entropy(out, y)
        dx = net.backward(g)
    np.testing.assert_allclose(out, out1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, dx1, rtol=1e-12, atol=1e-14)
    for (key, p1), (_, p) in zip(single.named_parameters(), model.named_parameters()):
        scale = np.abs(p1.grad).max()
        assert np.abs(p.grad - p1.grad).max() <= 1e-12 * scale, key


def test_training_matches_one_thread_and_repeats_exactly():
    x, y = batch("cnn", 96)

    def train(threads, backend="thread"):
        model = cnn64()
        fit(model, softmax_cross_entropy, Adam(model.parameters(), lr=1e-3), (x, y), None, epochs=2,
            batch_size=32, seed=0, checkpoint=None, threads=threads, backend=backend)
        return model.state_dict()

    one, two, again, processes = train(1), train(2), train(2), train(2, "process")
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-10, atol=1e-12, err_msg=key)
        assert np.array_equal(two[key], again[key]), f"{key} differs between two runs with 2 threads"
        assert np.array_equal(two[key], processes[key]), f"{key} differs between threads and processes"


def test_parameters_and_state_are_the_wrapped_models():
    model = cnn64()
    net = DataParallel(model, 2)
    assert [k for k, _ in net.named_parameters()] == [k for k, _ in model.named_parameters()]
    assert all(a is b for a, b in zip(net.parameters(), model.parameters()))
    assert net.state_dict().keys() == model.state_dict().keys()
    net.close()


def test_replicas_see_an_optimizers_rebound_weights():
    model = cnn64()
    net = DataParallel(model, 2)            # created before the optimizer moves the weights into its buffer
    optimizer = Adam(model.parameters(), lr=1e-2)
    x, y = batch("cnn", 8)
    with net:
        for _ in range(3):
            _, g = softmax_cross_entropy(net.forward(x), y)
            net.backward(g)
            optimizer.step()
        out = net.forward(x)
    np.testing.assert_allclose(out, model.forward(x), rtol=1e-12)


def test_batch_statistics_layers_are_refused():
    model = layers.Sequential(layers.Linear(4, 4), layers.BatchNorm1d(4))
    with pytest.raises(ValueError, match="BatchNorm1d computes batch statistics"):
        DataParallel(model, 2)


def test_dropout_masks_differ_between_shards():
    model = layers.Sequential(layers.Dropout(0.5, seed=1))
    x = np.ones((2, 1000))
    with DataParallel(model, 2) as net:
        out = net.forward(x)
    assert not np.array_equal(out[0], out[1])          # a copied generator would give both rows one mask
    assert 0.4 < (out == 0).mean() < 0.6


def test_errors_reach_the_caller_and_threads_stop():
    before = threading.active_count()
    net = DataParallel(mlp64(), 2)
    with pytest.raises(ValueError):
        with net:
            net.forward(np.zeros((4, 7)))                 # wrong width: every shard fails
    assert threading.active_count() == before


def test_add_bias_is_the_broadcast_addition():
    for m, f in [(25088, 8), (12544, 16), (7, 8), (13, 3)]:
        out, bias = RNG.standard_normal((m, f)).astype(np.float32), RNG.standard_normal(f).astype(np.float32)
        expected = out + bias
        add_bias(out, bias)
        assert np.array_equal(out, expected)


def live_workers(net):
    return [w._process for w in net._workers if getattr(w, "_process", None) is not None]


def test_process_backend_equals_threads_bit_for_bit_and_leaves_no_process():
    """float32, the main job's network: 12 Adam steps on two worker processes give the very same weights as two
    threads; the input gradient comes back too, the worker process ends with close()."""
    x, y = RNG.random((12 * 32, 1, 28, 28)).astype(np.float32), RNG.integers(0, 10, 12 * 32)
    results = {}
    for backend in ("thread", "process"):
        model = build_cnn(channels=(12, 24), seed=1)
        optimizer = Adam(model.parameters(), lr=3e-3)
        with DataParallel(model, 2, backend=backend) as net:
            for i in range(12):
                out, _ = net.train_step(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32], softmax_cross_entropy)
                optimizer.step()
            _, g = softmax_cross_entropy(net.forward(x[:9]), y[:9])
            dx = net.backward(g)
            workers = live_workers(net)
        results[backend] = (model.state_dict(), out, dx)
        assert all(p.poll() is not None for p in workers), "a worker process outlived close()"
    (w_t, out_t, dx_t), (w_p, out_p, dx_p) = results["thread"], results["process"]
    assert len(workers) == 1
    assert np.array_equal(out_t, out_p) and np.array_equal(dx_t, dx_p) and dx_p.shape == (9, 1, 28, 28)
    for key in w_t:
        assert np.array_equal(w_t[key], w_p[key]), key


def test_process_worker_errors_ctrl_c_and_death_reach_the_caller():
    net = DataParallel(mlp64(), 2, backend="process")
    x, y = batch("mlp", 6)
    with net:
        with pytest.raises(ValueError):
            net.forward(np.zeros((4, 7)))                 # wrong width: the worker's error is raised here
        (worker,) = live_workers(net)
        worker.send_signal(signal.SIGINT)                 # Ctrl-C reaches the whole process group: the parent's
        out, _ = net.train_step(x, y, softmax_cross_entropy)   # to handle, so the worker carries on
        assert out.shape == (6, 5) and worker.poll() is None
        worker.kill()
        worker.wait()
        with pytest.raises(RuntimeError, match="worker process DataParallel-1 ended"):
            net.train_step(x, y, softmax_cross_entropy)
    assert not live_workers(net)


def test_process_backend_dropout_streams_and_input_gradient_switch():
    with DataParallel(layers.Sequential(layers.Dropout(0.5, seed=1)), 2, backend="process") as net:
        out = net.forward(np.ones((2, 1000)))
    assert not np.array_equal(out[0], out[1])            # the worker's generator is its own stream
    x, y = batch("mlp", 6)
    with DataParallel(mlp64(), 2, backend="process") as net:
        _, g = softmax_cross_entropy(net.forward(x), y)
        assert net.backward(g).shape == (6, 12)
        net.requires_input_grad = False                  # reaches the worker's replica with its next job
        _, g = softmax_cross_entropy(net.forward(x), y)
        assert net.backward(g) is None
