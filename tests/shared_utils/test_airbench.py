"""shared_utils/pytorch/airbench.py's Muon recipe (airbench94_muon): which weights each optimizer group trains and
at what rate, its schedules, its head, and that it learns on real CIFAR-10. The airbench94 pieces it shares with
the anchor are tested in tests/test_cifar_anchor.py."""
import math

import pytest
import torch

from shared_utils import runs
from shared_utils.errors import UserError
from shared_utils.pytorch import airbench
from shared_utils.pytorch.airbench import (AIRBENCH94, AIRBENCH94_MUON, build_network, make_optimizer, random_crops,
                                           resumed_precision)
from shared_utils.pytorch.muon import Muon
from tests.conftest import requires, run_script


def test_muon_recipe_trains_filters_by_muon_and_the_rest_by_sgd_at_their_rates():
    hp = AIRBENCH94_MUON
    model = build_network(hp)
    optimizer, factors = make_optimizer(model, hp, batch=2000, total_steps=200, whiten_steps=75)
    assert isinstance(optimizer, Muon)
    filters, whiten, shifts, head = optimizer.param_groups
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m is not model.stem]
    assert {id(p) for p in filters["params"]} == {id(p) for p in convs} and len(convs) == 6
    assert filters["orthogonalize"] and filters["lr"] == 0.24 and filters["momentum"] == 0.6
    assert filters["ns_steps"] == 3 and filters["weight_decay"] == 0
    assert whiten["params"][0] is model.stem.bias and head["params"][0] is model.fc.weight
    assert len(shifts["params"]) == 6 and all(p.ndim == 1 for p in shifts["params"])   # BN shifts; scales fixed
    for group, lr in ((whiten, 0.053), (shifts, 0.053), (head, 0.67)):
        assert not group["orthogonalize"] and group["lr"] == lr and group["momentum"] == 0.85 and group["nesterov"]
        assert group["weight_decay"] * group["lr"] == pytest.approx(2e-6 * 2000)      # decoupled from the lr
    trained = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert trained == {id(p) for p in model.parameters() if p.requires_grad}      # everything trainable, once
    linear, whiten_factor = factors[0], factors[1]
    assert (linear(0), linear(100), linear(200)) == (1.0, 0.5, 0.0)                  # to zero, no warm-up
    assert (whiten_factor(0), whiten_factor(75), whiten_factor(150)) == (1.0, 0.0, 0.0)


def test_a_resumed_run_keeps_the_precision_its_epochs_were_trained_in():
    assert resumed_precision("auto", "bf16", "fp32") == "fp32"      # started on a CPU without bfloat16 units
    assert resumed_precision("auto", "fp32", "bf16") == "bf16"
    assert resumed_precision("auto", "bf16", None) == "bf16"        # a checkpoint from before this was recorded
    assert resumed_precision("fp32", "fp32", "fp32") == "fp32"
    with pytest.raises(UserError, match="last.pt was trained in bf16, and --precision fp32"):
        resumed_precision("fp32", "fp32", "bf16")


def test_muon_recipe_head_starts_at_unit_std_with_logits_divided_by_its_width():
    torch.manual_seed(0)
    model = build_network(AIRBENCH94_MUON)
    assert model.fc.weight.std().item() == pytest.approx(1.0, abs=1e-5)
    assert model.logit_scale == pytest.approx(1 / 256)
    anchor = build_network(AIRBENCH94)
    assert anchor.logit_scale == pytest.approx(1 / 9) and anchor.fc.weight.std() < 0.1
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in anchor.parameters())


@requires("cifar10")
@pytest.mark.parametrize("images, epochs, batch, test, floor, crops", [
    # default tier: the whole path (4 steps, the first 2 on 24 x 24 crops, every score, the files) on 128 images;
    # 29% after 8 steps on 256 images (chance 10%), measured, was worth 20 s of the default tier's 150 s on a slow
    # day: learning is the slow tier's (40 steps on 2,000 images, whole images: 66.2% measured)
    pytest.param(128, 2, 64, 40, None, (24, 1), id="tiny"),
    pytest.param(2000, 4, 200, 500, 0.5, None, id="2000 images", marks=pytest.mark.slow),
])
def test_muon_recipe_learns_on_real_images(tmp_path, monkeypatch, images, epochs, batch, test, floor, crops):
    seen = []

    def recording(images, size, generator):
        seen.append((len(images), size))
        return random_crops(images, size, generator)

    monkeypatch.setattr(airbench, "random_crops", recording)
    flags = ["--crop-size", str(crops[0]), "--crop-epochs", str(crops[1])] if crops else []
    result = run_script("projects/cifar_best/recipe.py", "--limit-train", str(images), "--test-subset", str(test),
                        "--batch-size", str(batch), "--epochs", str(epochs), *flags, "--quiet", "--out", tmp_path,
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = f"recipe_muon_crop{crops[0]}x{crops[1]}" if crops else "recipe_muon"
    assert seen == ([(batch, crops[0])] * (images // batch * crops[1]) if crops else [])   # then whole images
    run = tmp_path / study / "recipe" / "seed_0"
    s = runs.read_summary(run)
    assert s["optimizer"] == "muon" and s["steps"] == images // batch * epochs and s["parameters"] == 1_972_792
    assert s["counted_seconds"] >= s["setup_seconds"] + s["tta_seconds"] and math.isfinite(s["counted_seconds"])
    assert s["test_acc"] == s["test_acc_tta_six"] and {"test_acc_tta_none", "test_acc_tta_flip"} <= set(s)
    if floor is not None:
        assert s["test_acc"] > floor, s["test_acc"]      # chance is 10% (sd 1.3 points on 500 images)
    for name in ("time_to_accuracy.png", "table.md", "bars.png"):
        assert (run.parents[1] / name).is_file(), name


def test_random_crops_cut_each_image_at_its_own_place_and_the_network_takes_them():
    images = torch.randn(300, 3, 32, 32)
    crops = random_crops(images, 24, torch.Generator().manual_seed(0))
    assert crops.shape == (300, 3, 24, 24)
    places = []
    for img, crop in zip(images, crops):                       # each crop is one 24 x 24 window of its own image
        found = [(i, j) for i in range(9) for j in range(9) if torch.equal(crop, img[:, i:i + 24, j:j + 24])]
        assert len(found) == 1
        places += found
    assert len(set(places)) > 50 and {i for i, _ in places} == set(range(9))   # 81 places, all rows reached
    model = build_network(AIRBENCH94_MUON)
    assert model(crops[:2].contiguous(memory_format=torch.channels_last)).shape == (2, 10)
    assert model(torch.randn(2, 3, 10, 10)).shape == (2, 10)    # the smallest side --crop-size allows
