"""The engine beyond classification: loss_fn tasks, labelled transforms, best by a named metric,
EMA, test-time augmentation, TensorBoard, resume refusing foreign checkpoints, a frozen backbone
without patched methods, and the CUDA path (skipped without a GPU)."""
import argparse
import copy
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from shared_utils import runs  # noqa: E402
from shared_utils.errors import UserError  # noqa: E402
from shared_utils.pytorch import pipeline as tp  # noqa: E402
from shared_utils.pytorch.checkpoint import load_torch, save_torch  # noqa: E402
from shared_utils.pytorch.engine import (TestTimeAugmentation, TrainConfig, evaluate, fit, load_best,  # noqa: E402
                                         regression)
from shared_utils.pytorch.models import SmallCNN, freeze_backbone, resnet18  # noqa: E402

CPU = torch.device("cpu")


def run_dir(tmp_path, name="r", resume=False):
    return runs.RunDir(__file__, name, argparse.Namespace(out=tmp_path), resume=resume)


def images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


class TinyAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.ReLU(), nn.Linear(8, 48), nn.Sigmoid(),
                                 nn.Unflatten(1, (3, 4, 4)))

    def forward(self, x):
        return self.net(x)


def test_reconstruction_trains_through_the_same_loop_and_picks_best_by_lowest_val_loss(tmp_path):
    rng = np.random.default_rng(0)     # 48-pixel images made from 3 hidden factors: compressible to 8
    factors, mixing = rng.normal(size=(128, 3)), rng.normal(size=(3, 48))
    x = (255 / (1 + np.exp(-factors @ mixing))).astype(np.uint8).reshape(128, 3, 4, 4)
    y = np.zeros(128, dtype=np.int64)
    torch.manual_seed(0)
    model = TinyAutoencoder()
    train = tp.TensorLoader(x, y, batch_size=16, augment=[tp.reconstruction()], seed=0)
    val = tp.TensorLoader(x[:32], y[:32], batch_size=32, shuffle=False, augment=[tp.reconstruction()])
    cfg = TrainConfig(epochs=15, lr=0.01, optimizer="adam", weight_decay=0, schedule="none", best_metric="val_loss",
                      best_mode="min")
    history = fit(model, train, val, cfg, device=CPU, run=run_dir(tmp_path), loss_fn=regression())
    metrics = runs.read_metrics(tmp_path / "r")
    assert {"train_loss", "train_mse", "val_loss", "val_mse"} <= set(metrics) and "train_acc" not in metrics
    assert history[-1]["train_mse"] < 0.5 * history[0]["train_mse"]
    best = load_torch(tmp_path / "r" / "best.pt")
    assert best["epoch"] == int(metrics["epoch"][np.argmin(metrics["val_loss"])])
    assert best["val_loss"] == pytest.approx(metrics["val_loss"].min(), rel=1e-5)


def test_rotation_prediction_makes_its_labels():
    x = torch.rand(64, 3, 8, 8)
    out, k = tp.rotation_prediction()(x, torch.zeros(64, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(k.tolist()) == {0, 1, 2, 3}
    for i in range(64):
        assert torch.equal(out[i], torch.rot90(x[i], int(k[i]), dims=(1, 2)))


def test_mixup_and_cutmix_mix_images_and_labels_by_the_same_share():
    gen = torch.Generator().manual_seed(3)
    x = torch.stack([torch.full((3, 8, 8), float(i)) for i in range(16)])     # image i is all i
    y = torch.arange(16)                                                     # label i
    mixed, target = tp.mixup(alpha=1.0, classes=16)(x, y, gen)
    assert target.shape == (16, 16) and torch.allclose(target.sum(1), torch.ones(16))
    for i in range(16):   # the pixel value is the label-weighted mean of the two images' values
        assert mixed[i].mean().item() == pytest.approx(float((target[i] * torch.arange(16.0)).sum()), abs=1e-4)
    assert (target.max(1).values < 1).sum() >= 8          # most images really were mixed
    cut, soft = tp.cutmix(alpha=1.0, classes=16)(x, y, gen)
    for i in range(16):
        kept_share = (cut[i] == x[i]).float().mean().item()
        assert soft[i, i].item() == pytest.approx(kept_share, abs=1e-6)


def test_soft_labels_train_with_the_default_classification_task(tmp_path):
    x, y = images(64)
    torch.manual_seed(0)
    train = tp.TensorLoader(x, y, batch_size=16, augment=[tp.mixup(0.4)], mean=(0.5,) * 3, std=(0.25,) * 3)
    history = fit(SmallCNN(width=4), train, None, TrainConfig(epochs=2, lr=0.01, schedule="none"), device=CPU)
    assert np.isfinite(history[-1]["train_loss"]) and 0 <= history[-1]["train_acc"] <= 1


def test_tta_averages_the_flipped_view():
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = (model(x) + model(x.flip(3))) / 2
        assert torch.allclose(TestTimeAugmentation(model, "flip")(x), expected, atol=1e-6)


def test_ema_weights_are_evaluated_checkpointed_and_resumed(tmp_path):
    x, y = images(64)
    cfg = TrainConfig(epochs=3, lr=0.05, ema_decay=0.9, tta="flip", tensorboard=True)

    def loaders(seed=0):
        kw = dict(mean=(0.5,) * 3, std=(0.25,) * 3)
        return (tp.TensorLoader(x, y, batch_size=16, augment=[tp.horizontal_flip()], seed=seed, **kw),
                tp.TensorLoader(x, y, batch_size=64, shuffle=False, **kw))

    torch.manual_seed(0)
    straight = SmallCNN(width=4)
    fit(straight, *loaders(), cfg, device=CPU, run=run_dir(tmp_path, "a"))
    last = load_torch(tmp_path / "a" / "last.pt")
    averaged = {k[len("module."):]: v for k, v in last["ema"].items() if k.startswith("module.")}
    assert any(not torch.equal(averaged[k], v) for k, v in straight.state_dict().items())   # EMA != raw weights
    best = load_best(SmallCNN(width=4), run_dir(tmp_path, "a", resume=True))
    scores = evaluate(best, loaders()[1], CPU, tta="flip")
    assert scores["acc"] == pytest.approx(runs.read_metrics(tmp_path / "a")["val_acc"].max(), abs=1e-6)
    torch.manual_seed(0)
    fit(SmallCNN(width=4), *loaders(), cfg, device=CPU, run=run_dir(tmp_path, "b"), stop_after=1)
    resumed = SmallCNN(width=4)
    fit(resumed, *loaders(seed=5), cfg, device=CPU, run=run_dir(tmp_path, "b", resume=True), resume=True)
    again = load_torch(tmp_path / "b" / "last.pt")["ema"]
    assert all(torch.equal(last["ema"][k], again[k]) for k in again)
    # TensorBoard scalars beside metrics.csv
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "a" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_acc")] == [1, 2, 3]


def test_resume_refuses_other_settings_other_models_and_bare_tensors(tmp_path):
    x, y = images(32)
    kw = dict(mean=(0.5,) * 3, std=(0.25,) * 3)

    def go(model, cfg, name="r"):
        fit(model, tp.TensorLoader(x, y, batch_size=16, **kw), None, cfg, device=CPU,
            run=run_dir(tmp_path, name, resume=True), resume=True)

    go(SmallCNN(width=4), TrainConfig(epochs=1, lr=0.05))
    with pytest.raises(UserError, match=r"other settings \(lr: 0.05 in the checkpoint, 0.5 now\)"):
        go(SmallCNN(width=4), TrainConfig(epochs=2, lr=0.5))
    with pytest.raises(UserError, match="belongs to another model"):
        go(SmallCNN(width=8), TrainConfig(epochs=2, lr=0.05))
    save_torch(tmp_path / "r" / "last.pt", torch.zeros(3))
    with pytest.raises(UserError, match="not a resumable checkpoint"):
        go(SmallCNN(width=4), TrainConfig(epochs=2, lr=0.05))
    save_torch(tmp_path / "r" / "last.pt", {"model": {}, "epoch": 1})
    with pytest.raises(UserError, match="missing"):
        go(SmallCNN(width=4), TrainConfig(epochs=2, lr=0.05))


def test_frozen_backbone_saves_copies_and_keeps_its_statistics():
    torch.manual_seed(0)
    model = resnet18(classes=10)
    freeze_backbone(model)
    buffer = io.BytesIO()
    torch.save(model, buffer)                        # whole-model pickling works: no patched methods
    twin = copy.deepcopy(model)
    model.eval()
    twin.train()                                     # switching the copy leaves the original alone
    assert not any(m.training for m in model.modules()) and all(m.training for m in twin.modules())
    before = [model.bn1.running_mean.clone(), model.layer1[0].bn1.running_mean.clone()]
    model.train()
    out = model(torch.randn(8, 3, 32, 32) * 3 + 1)
    out.sum().backward()
    assert torch.equal(model.bn1.running_mean, before[0]) and torch.equal(model.layer1[0].bn1.running_mean, before[1])
    assert model.conv1.weight.grad is None and model.fc.weight.grad is not None
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine: the mixed-precision and "
                                                          "channels-last path runs only on CUDA")
def test_cuda_path_mixed_precision_and_channels_last(tmp_path):
    x, y = images(64)
    kw = dict(mean=(0.5,) * 3, std=(0.25,) * 3, device="cuda")
    model = SmallCNN(width=8)
    history = fit(model, tp.TensorLoader(x, y, batch_size=32, **kw), tp.TensorLoader(x, y, batch_size=64, **kw),
                  TrainConfig(epochs=2, lr=0.05, amp=True, channels_last=True), device=torch.device("cuda"),
                  run=run_dir(tmp_path))
    assert np.isfinite(history[-1]["train_loss"])
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert load_torch(tmp_path / "r" / "last.pt")["scaler"]["scale"] > 0


def test_cpu_bfloat16_and_channels_last_path_trains_and_resumes_to_the_same_weights(tmp_path):
    x, y = images(64)
    kw = dict(mean=(0.5,) * 3, std=(0.25,) * 3)
    cfg = TrainConfig(epochs=2, lr=0.05, cpu_amp=True, cpu_channels_last=True)

    def train(folder, resume=False, **extra):
        torch.manual_seed(0)
        model = SmallCNN(width=8)
        history = fit(model, tp.TensorLoader(x, y, batch_size=32, seed=0, **kw), tp.TensorLoader(x, y, batch_size=64, **kw),
                      cfg, device=torch.device("cpu"), run=run_dir(folder, resume=resume), **extra)
        return model, history

    model, history = train(tmp_path / "a")
    assert np.isfinite(history[-1]["train_loss"]) and np.isfinite(history[-1]["val_loss"])
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    _, first = train(tmp_path / "b", stop_after=1)
    resumed, rows = train(tmp_path / "b", resume=True)
    assert len(first) == 1 and [r["epoch"] for r in rows] == [1, 2]    # epoch 2 came from the checkpoint
    assert torch.equal(resumed.features[0].weight, model.features[0].weight)
