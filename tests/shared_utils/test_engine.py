"""The PyTorch engine: it learns, resumes to the same weights, refuses NaN and foreign checkpoints."""
import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shared_utils.pytorch.models import SmallCNN  # noqa: E402
from shared_utils import data, runs  # noqa: E402
from shared_utils.errors import UserError  # noqa: E402
from shared_utils.pytorch.pipeline import TensorLoader, horizontal_flip, random_crop  # noqa: E402
from shared_utils.pytorch.checkpoint import load_torch  # noqa: E402
from shared_utils.pytorch.engine import TrainConfig, TrainingDiverged, evaluate, fit  # noqa: E402
from tests.conftest import requires  # noqa: E402

CPU = torch.device("cpu")


def loaders(x, y, batch=32, augment=(), seed=0):
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    return (TensorLoader(x, y, batch_size=batch, mean=mean, std=std, augment=augment, seed=seed),
            TensorLoader(x, y, batch_size=256, mean=mean, std=std, shuffle=False))


def run_dir(tmp_path, name="r"):
    return runs.RunDir(__file__, name, argparse.Namespace(out=tmp_path))


def small_model(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(width=8, dropout=0.1)


@requires("cifar10")
def test_tiny_model_overfits_a_small_real_batch(tmp_path):
    ds = data.cifar10(limit=64, seed=0)
    train, val = loaders(ds.train.x, ds.train.y)
    history = fit(small_model(), train, val, TrainConfig(epochs=30, lr=3e-3, optimizer="adam", weight_decay=0,
                                                          schedule="none"), device=CPU, run=run_dir(tmp_path))
    assert history[0]["train_acc"] < 0.3 and history[-1]["val_acc"] >= 0.95  # memorised 64 real images
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 5
    assert runs.read_metrics(tmp_path / "r")["epoch"].tolist() == list(range(1, 31))


def synthetic(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    x, y = synthetic()
    cfg = TrainConfig(epochs=4, lr=0.05, schedule="cosine", warmup_epochs=1, label_smoothing=0.1, grad_clip=1.0)
    augment = [random_crop(4), horizontal_flip()]
    straight = small_model()
    fit(straight, *loaders(x, y, augment=augment), cfg, device=CPU, run=run_dir(tmp_path, "straight"))
    # the same run, stopped after 2 epochs (a fresh process would start from scratch like this) ...
    interrupted = small_model()
    fit(interrupted, *loaders(x, y, augment=augment), cfg, device=CPU, run=run_dir(tmp_path, "resumed"), stop_after=2)
    # ... then resumed into new objects: everything must come from last.pt
    torch.manual_seed(123)  # a different RNG state, which resume must overwrite
    resumed = small_model(seed=99)
    history = fit(resumed, *loaders(x, y, augment=augment, seed=7), cfg, device=CPU,
                  run=runs.RunDir(__file__, "resumed", argparse.Namespace(out=tmp_path), resume=True), resume=True)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert runs.read_metrics(tmp_path / "resumed")["epoch"].tolist() == [1, 2, 3, 4]


def test_resume_drops_a_metrics_row_whose_checkpoint_was_never_written(tmp_path):
    x, y = synthetic(32)
    cfg = TrainConfig(epochs=3, lr=0.05)
    fit(small_model(), *loaders(x, y, batch=8), cfg, device=CPU, run=run_dir(tmp_path), stop_after=1)
    with open(tmp_path / "r" / "metrics.csv", "a") as f:    # killed after logging epoch 2, before last.pt
        f.write("2,9.9,0.1,9.9,0.1,0.05,1.0,10.0\n")
    fit(small_model(), *loaders(x, y, batch=8), cfg, device=CPU,
        run=runs.RunDir(__file__, "r", argparse.Namespace(out=tmp_path), resume=True), resume=True)
    metrics = runs.read_metrics(tmp_path / "r")
    assert metrics["epoch"].tolist() == [1, 2, 3] and 9.9 not in metrics["train_loss"].tolist()
    assert b"\r" not in (tmp_path / "r" / "metrics.csv").read_bytes()   # one line ending, old rows and new
    summary = runs.RunDir(__file__, "r", argparse.Namespace(out=tmp_path), resume=True).summary()
    assert summary["train_seconds"] == pytest.approx(metrics["seconds"].sum(), abs=1e-3)


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    x, y = synthetic(32)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        fit(small_model(), *loaders(x, y, batch=4), TrainConfig(epochs=1, lr=1e12, momentum=0.0, schedule="none"),
            device=CPU)


def test_checkpoints_are_weights_only(tmp_path):
    x, y = synthetic(32)
    fit(small_model(), *loaders(x, y), TrainConfig(epochs=1), device=CPU, run=run_dir(tmp_path))
    best = load_torch(tmp_path / "r" / "best.pt")
    model = small_model()
    model.load_state_dict(best["model"])
    torch.save({"model": argparse.Namespace(a=1)}, tmp_path / "r" / "evil.pt")   # not just weights
    with pytest.raises(UserError, match="more than weights"):
        load_torch(tmp_path / "r" / "evil.pt")
    scores = evaluate(model, loaders(x, y)[1], CPU)
    loss, acc = scores["loss"], scores["acc"]
    assert np.isfinite(loss) and 0 <= acc <= 1


@pytest.mark.parametrize("schedule", ["none", "onecycle"])
def test_lr_scales_give_a_prefix_its_own_rate(schedule):
    from shared_utils.pytorch.engine import make_optimizer, make_scheduler

    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("encoder", torch.nn.Linear(4, 3))
    model.add_module("head", torch.nn.Linear(3, 2))
    cfg = TrainConfig(lr=0.1, optimizer="sgd", momentum=0.0, weight_decay=0.0, schedule=schedule,
                      lr_scales={"encoder.": 0.1})
    optimizer = make_optimizer(model, cfg)
    make_scheduler(optimizer, cfg, steps_per_epoch=10)
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    first = rates[id(model.encoder.weight)] / rates[id(model.head.weight)]
    assert first == pytest.approx(0.1) and rates[id(model.encoder.bias)] == rates[id(model.encoder.weight)]
    # one plain SGD step (no schedule) moves each parameter by -lr x scale x its gradient
    if schedule == "none":
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        model(torch.randn(8, 4)).pow(2).mean().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        optimizer.step()
        for name, p in model.named_parameters():
            lr = 0.01 if name.startswith("encoder.") else 0.1
            assert torch.allclose(p.detach(), before[name] - lr * grads[name], atol=1e-7), name


def test_best_tracker_picks_the_best_epoch_and_stops_after_patience():
    from shared_utils.pytorch.engine import BestTracker

    tracker = BestTracker(TrainConfig(best_metric="val_loss", best_mode="min", patience=2))
    improved, stop = [], []
    for epoch, loss in enumerate([1.0, 0.8, 0.9, 0.85, 0.7], 1):
        improved.append(tracker.update({"epoch": epoch, "val_loss": loss}))
        stop.append(tracker.should_stop())
    assert improved == [True, True, False, False, True] and tracker.best == 0.7
    assert stop == [False, False, False, True, False]   # 0.9 then 0.85: two epochs without a lower loss
    no_val = BestTracker(TrainConfig())               # val_acc falls back to train_acc without validation
    assert no_val.update({"train_acc": 0.5}) and not no_val.update({"train_acc": 0.4}) and no_val.best == 0.5
    with pytest.raises(UserError, match="not among the logged metrics"):
        BestTracker(TrainConfig(best_metric="val_f1")).update({"epoch": 1, "val_acc": 0.5})
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)


def test_early_stopping_ends_a_run_that_stopped_improving_and_resume_keeps_the_count(tmp_path):
    """A learning rate of 0 never improves after the first epoch: patience 2 ends it at epoch 3 of 10."""
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (64, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 64)
    cfg = TrainConfig(epochs=10, lr=1e-12, optimizer="sgd", schedule="none", patience=2, best_metric="val_loss",
                      best_mode="min")
    train, val = loaders(x, y)
    history = fit(small_model(), train, val, cfg, device=CPU, run=run_dir(tmp_path))
    assert [r["epoch"] for r in history] == [1, 2, 3]
    # stopped at epoch 2 and resumed: the epochs without improvement carry over, so it still ends at 3
    train, val = loaders(x, y)
    fit(small_model(), train, val, cfg, device=CPU, run=run_dir(tmp_path, "cut"), stop_after=2)
    train, val = loaders(x, y)
    resumed = fit(small_model(), train, val, cfg, device=CPU, run=run_dir(tmp_path, "cut"), resume=True)
    assert [r["epoch"] for r in resumed] == [1, 2, 3]


def test_the_updater_state_round_trips_to_the_same_next_step():
    """Optimizer, schedule, lookahead and EMA state saved after some steps and loaded into a fresh updater
    give the same weights after the next step as the updater that never stopped."""
    import copy

    from shared_utils.pytorch.engine import Updater

    cfg = TrainConfig(epochs=2, lr=0.05, lookahead_steps=2, ema_decay=0.9, grad_clip=1.0)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    def loss(model):
        return torch.nn.functional.cross_entropy(model(x), y)

    model = small_model().eval()      # no dropout draws: the step depends on the saved state alone
    first = Updater(model, cfg, steps_per_epoch=3, device=CPU)
    for _ in range(3):
        first.step(loss(model))
    saved = copy.deepcopy(first.state_dict())
    weights = copy.deepcopy(model.state_dict())
    first.step(loss(model))
    twin = small_model(seed=1).eval()
    twin.load_state_dict(weights)
    second = Updater(twin, cfg, steps_per_epoch=3, device=CPU)
    second.load_state_dict(saved)
    second.step(loss(twin))
    assert second.steps == first.steps == 4 and second.lr == pytest.approx(first.lr)
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.allclose(a, b), name
    for a, b in zip(first.scored.state_dict().values(), second.scored.state_dict().values()):
        assert torch.allclose(a.float(), b.float())
