"""benchmarks/cifar_anchor.py: the airbench94 anchor has the paper's size and cost, its pieces do what the paper
describes, and the command trains, scores and compares on real CIFAR-10."""
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from benchmarks.cifar_anchor import HP, PAPER, build_anchor
from shared_utils.pytorch.airbench import AlternatingFlipImages, WeightAverage, forward_macs, triangle, tta_logits
from shared_utils import runs
from shared_utils.study import Study, start
from shared_utils.pytorch.device import BF16_MIN_SPEEDUP
from shared_utils.pytorch.models import count_parameters
from tests.conftest import REPO, assert_user_error, requires, run_script


def test_the_network_has_the_papers_parameters_and_flops():
    model = build_anchor()
    assert count_parameters(model) == 1_972_792                     # convolutions, linear layer, BN scales and shifts
    assert round(count_parameters(model) / 1e6, 2) == PAPER["parameters"] / 1e6   # the paper's "1.97M"
    macs = forward_macs(model)
    assert macs == 118_147_360
    steps = math.ceil(50_000 // HP["batch_size"] * HP["epochs"])    # 476 steps of 1,024 images
    # forward + backward (3x the forward's multiply-adds) over the training images, then 6 views of 10,000
    petaflops = (2 * 3 * macs * steps * HP["batch_size"] + 2 * 6 * macs * 10_000) / 1e15
    assert round(petaflops, 2) == PAPER["petaflops"]
    out = model(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 10) and torch.isfinite(out).all()


def test_the_stem_whitens_uncentred_patches_and_the_convolutions_start_as_identity():
    model = build_anchor()
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(3, 3, generator=g)
    images = torch.einsum("dc,nchw->ndhw", mix, torch.randn(400, 3, 32, 32, generator=g)) + 0.3
    model.init_whitening(images, eps=1e-8, centre=False)
    assert torch.count_nonzero(model.stem.bias) == 0
    out = model.stem(images)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    second_moment = out.T @ out / len(out)                         # uncentred: the mean 0.3 is whitened too
    np.testing.assert_allclose(second_moment.numpy(), np.eye(12), atol=2e-3)
    assert torch.equal(model.stem(images)[:, 12:], -model.stem(images)[:, :12])
    first = model.stages[0][0]                                       # 24 -> 64 channels
    x = torch.randn(2, 24, 8, 8)
    with torch.no_grad():
        assert torch.allclose(first(x)[:, :24], x, atol=1e-6)


def test_schedule_images_averaging_and_test_views():
    f = triangle(476, *HP["schedule"])
    assert len(f) == 477 and f[0] == pytest.approx(0.2) and f[int(0.23 * 476)] == pytest.approx(1.0)
    assert f[-1] == pytest.approx(0.07) and max(f) == pytest.approx(1.0)
    x = torch.randn(6, 3, 8, 8)
    plain = AlternatingFlipImages(x, 0, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    assert torch.equal(plain.epoch(1, g), plain.epoch(0, g).flip(-1))   # every other epoch all mirrored
    shifted = AlternatingFlipImages(x, 2, torch.Generator().manual_seed(1))
    crops = shifted.epoch(0, torch.Generator().manual_seed(3))
    for img, padded in zip(crops, shifted.padded):                    # each a 8x8 window of its padded image
        assert any(torch.equal(img, padded[:, i:i + 8, j:j + 8]) for i in range(5) for j in range(5))
    model = torch.nn.Linear(2, 2)
    average = WeightAverage(model)
    with torch.no_grad():
        model.weight += 1.0
    before = average.average["weight"].clone()
    average.update(model, 0.75)                                       # a quarter of the way to the new weights
    assert torch.allclose(model.weight, before + 0.25) and torch.equal(model.weight, average.average["weight"])
    constant = torch.ones(2, 3, 8, 8)                                 # a mirror- and shift-invariant input
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 4))
    assert torch.allclose(tta_logits(net, constant, 6), net(constant), atol=1e-6)
    ramp = torch.arange(8.0).expand(1, 3, 8, 8)
    expected = 0.5 * 0.5 * (net(ramp) + net(ramp.flip(-1)))
    padded = torch.nn.functional.pad(ramp, (1,) * 4, mode="reflect")
    for view in (padded[..., :8, :8], padded[..., 2:, 2:]):
        expected += 0.25 * 0.5 * (net(view) + net(view.flip(-1)))
    assert torch.allclose(tta_logits(net, ramp, 6), expected, atol=1e-5)


def stand_in_trial(config):
    """A finished run with the given figures (config["figures"][seed]) and two epochs' seconds."""
    t = start(config, __file__)
    for epoch, seconds in ((1, 10.0), (2, 12.0)):
        t.run.log(epoch=epoch, seconds=seconds)
    return t.run.summary(precision="fp32", **config["figures"][str(config["seed"])])


def test_the_comparison_pairs_each_seed_and_gives_the_ratio_with_its_ci(tmp_path):
    """comparison() on two studies run here with stand-in trials: it reads accuracy and times back through the
    study results, pairs the seeds both sides have, and names how each run was timed."""
    from benchmarks.cifar_anchor import comparison

    def study(name, condition, figures):
        result = Study(name, stand_in_trial, {condition: {}}, sorted(figures), tmp_path / name,
                       base={"figures": {str(k): v for k, v in figures.items()}}).run(quiet=True)
        result.raise_for_failures()
        return result

    new = {"memory_format": "channels_last", "huge_pages": True}
    anchor = study("anchor", "airbench94", {0: {"test_acc": 0.9083, "counted_seconds": 4919.0,    # before layout
                                                "cpu": "AMD EPYC"},                  # and before the device key
                                            1: {"test_acc": 0.9055, "counted_seconds": 3697.0, **new},
                                            2: {"test_acc": 0.9070, "counted_seconds": 3700.0, **new}})
    recipe = study("recipe_muon", "recipe", {0: {"test_acc": 0.9077, "counted_seconds": 5036.0, "cpu": "AMD EPYC",
                                            "device": "NVIDIA H100 80GB HBM3"},
                                        1: {"test_acc": 0.9060, "counted_seconds": 3000.0, **new}})
    comparison(anchor, recipe, tmp_path)
    main = (tmp_path / "comparison.md").read_text()
    assert "| anchor (airbench94) | 3 |" in main and "| cifar_best recipe | 2 |" in main
    rows = {line.split(" | ")[0]: line for line in main.splitlines()}
    assert rows["| anchor (airbench94)"].endswith("| AMD EPYC |")           # a CPU run names its CPU,
    assert rows["| cifar_best recipe"].endswith("| NVIDIA H100 80GB HBM3 |")     # a GPU run its GPU
    assert f"| recipe / anchor (seeds 0, 1) |  |  | {(5036 + 3000) / (4919 + 3697):.2f}x |" in main
    by_seed = (tmp_path / "comparison_by_seed.md").read_text().splitlines()
    seed_rows = [line for line in by_seed if line.startswith("| 0 |") or line.startswith("| 1 |")]
    assert len(seed_rows) == 2 and not any(line.startswith("| 2 |") for line in by_seed)     # no recipe seed 2
    assert "| -0.06 |" in seed_rows[0] and "| 1.024 |" in seed_rows[0]
    assert "NCHW, 4 kB pages / NCHW, 4 kB pages" in seed_rows[0]
    assert "| +0.05 |" in seed_rows[1] and "| 0.811 |" in seed_rows[1] and "channels-last, 2 MB pages" in seed_rows[1]
    # a run whose freed memory was kept for the next step (shared_utils.pytorch.memory) says so
    from benchmarks.cifar_anchor import settings_of
    assert settings_of({"memory_format": "channels_last", "freed_memory_kept": True}) == "channels-last, memory kept"
    ratios = np.array([5036 / 4919, 3000 / 3697])
    half = 12.706 * ratios.std(ddof=1) / np.sqrt(2)                     # t(0.975, 1 degree of freedom)
    assert f"{ratios.mean():.3f} ± {half:.3f}" in by_seed[-1]


TINY = ("--limit-train", "64", "--test-subset", "40", "--batch-size", "32", "--epochs", "1.5", "--quiet")


@requires("cifar10")
def test_tiny_anchor_run_trains_and_scores(tmp_path):
    result = run_script("benchmarks/cifar_anchor.py", *TINY, "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "cifar_anchor" / "anchor" / "airbench94" / "seed_0"
    s = runs.read_summary(run)
    assert s["steps"] == 3 and s["parameters"] == 1_972_792 and s["precision"] in ("fp32", "bf16")
    assert 0.0 <= s["test_acc"] <= 1.0 and s["counted_seconds"] >= s["setup_seconds"] + s["tta_seconds"]
    assert len(runs.read_metrics(run)["epoch"]) == 2 and (run / "last.pt").is_file()
    state = torch.load(run / "last.pt", weights_only=True)     # what a resume on another machine continues in
    assert state["precision"] == s["precision"] and state["cpus"] == [s["cpu"]] == [runs.cpu_name()]
    probe = s["bf16_probe"]      # run only on a CPU with bfloat16 units, where it decides the precision
    if probe is None:
        assert s["precision"] == "fp32" and not {"amx_bf16", "avx512_bf16"} & set(runs.cpu_features())
    else:
        assert (s["precision"] == "bf16") == (probe["fp32_seconds"] >= BF16_MIN_SPEEDUP * probe["bf16_seconds"])


@pytest.mark.slow
@requires("cifar10")
def test_with_recipe_writes_the_side_by_side_table(tmp_path):
    flags = (*TINY, "--with-recipe", "--crop-size", "24", "--crop-epochs", "1")
    result = run_script("benchmarks/cifar_anchor.py", *flags, "--out", tmp_path, "--records", tmp_path / "kept",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # the crop variant's tables are its own: the default recipe's comparison.md beside them is not overwritten
    assert not (tmp_path / "cifar_anchor" / "comparison.md").exists()
    table = (tmp_path / "cifar_anchor" / "comparison_recipe_muon_crop24x1.md").read_text()
    assert "anchor (airbench94)" in table and "cifar_best recipe" in table and "recipe / anchor" in table
    assert "recipe_muon_crop24x1" in table
    assert (tmp_path / "cifar_anchor" / "comparison_recipe_muon_crop24x1_by_seed.md").is_file()
    crop_run = tmp_path / "cifar_anchor" / "cifar_best" / "recipe_muon_crop24x1" / "recipe" / "seed_0"
    assert runs.read_summary(crop_run)["steps"] == 8    # its own 8 epochs of one 64-image batch: the variant ran
    # both sides' records (JSON, no weights) are kept, laid out as --out, and alone redraw the same table
    kept = tmp_path / "kept"
    assert (kept / "cifar_anchor" / "anchor" / "airbench94" / "seed_0" / "summary.json").is_file()
    assert (kept / "cifar_anchor" / "cifar_best" / "recipe_muon_crop24x1" / "recipe" / "seed_0" / "summary.json").is_file()
    assert not list(kept.rglob("*.pt"))
    result = run_script("benchmarks/cifar_anchor.py", *flags, "--report-only", "--out", kept, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (kept / "cifar_anchor" / "comparison_recipe_muon_crop24x1.md").read_text() == table


@pytest.mark.parametrize("flags", [["--crop-size", "24", "--crop-epochs", "1"],            # without --with-recipe
                                   ["--with-recipe", "--crop-size", "24"]])
def test_the_crop_flags_go_together_with_the_recipe(tmp_path, flags):
    result = run_script("benchmarks/cifar_anchor.py", *TINY, *flags, "--out", tmp_path / "o", cwd=tmp_path)
    assert_user_error(result, "go together")
    assert not any((tmp_path / "o").rglob("*"))           # --out checked, nothing written in it


@pytest.mark.slow
@requires("cifar10")
def test_killed_run_resumes_from_its_last_epoch_to_the_same_weights(tmp_path):
    flags = ["--limit-train", "64", "--test-subset", "40", "--batch-size", "16", "--epochs", "6", "--quiet"]
    straight = run_script("benchmarks/cifar_anchor.py", *flags, "--out", tmp_path / "a", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    cmd = [sys.executable, str(REPO / "benchmarks" / "cifar_anchor.py"), *flags, "--out", str(tmp_path / "b")]
    metrics = tmp_path / "b" / "cifar_anchor" / "anchor" / "airbench94" / "seed_0" / "metrics.csv"
    proc = subprocess.Popen(cmd, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:     # header and two epochs
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed half-way"
    resumed = run_script("benchmarks/cifar_anchor.py", *flags, "--out", tmp_path / "b", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    folders = [tmp_path / x / "cifar_anchor" / "anchor" / "airbench94" / "seed_0" for x in "ab"]
    a, b = (runs.read_summary(folder) for folder in folders)
    for key in ("test_acc", "test_acc_tta_none", "test_acc_tta_flip", "steps"):
        assert a[key] == b[key], key
    wa, wb = (torch.load(folder / "last.pt", weights_only=True)["model"] for folder in folders)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@requires("cifar10")
def test_the_small_copy_for_the_gpu_check_reads_back_balanced(tmp_path):
    from shared_utils.data.cifar10_batches import load_arrays

    result = run_script("benchmarks/make_cifar_subset.py", "--train", "50", "--test", "20", "--out", tmp_path,
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    train, test, classes, _, _ = load_arrays(tmp_path / "gpu_subset", download_ok=False)
    assert train.x.shape == (50, 3, 32, 32) and test.x.shape == (20, 3, 32, 32) and len(classes) == 10
    assert np.bincount(train.y, minlength=10).tolist() == [5] * 10 and np.bincount(test.y).tolist() == [2] * 10
    sizes = [f.stat().st_size for f in (tmp_path / "gpu_subset" / "cifar-10-batches-py").iterdir()]
    assert len(sizes) == 6 and sum(sizes) < 50 * 3072 * 1.2 + 20 * 3072 * 1.2


def test_step_ratio_benchmark_times_both_recipes_in_alternating_blocks(tmp_path):
    result = run_script("benchmarks/cifar_step_ratio.py", "--quick", "--blocks", "2", "--crop-size", "24",
                        "--crop-epochs", "3", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    r = json.loads((tmp_path / "cifar_step_ratio.json").read_text())
    anchor, recipe = r["recipes"]["anchor (airbench94)"], r["recipes"]["cifar_best Muon recipe"]
    crop = r["recipes"]["Muon recipe on 24x24 crops"]
    assert (anchor["batch_size"], recipe["batch_size"], crop["batch_size"]) == (20, 40, 40)   # 2% of 1,024, 2,000
    assert (anchor["image_side"], recipe["image_side"], crop["image_side"]) == (32, 32, 24)
    assert len(anchor["step_seconds"]) == len(recipe["step_seconds"]) == len(crop["step_seconds"]) == 2
    assert anchor["steps"] == math.ceil(50_000 // 20 * 9.9) and recipe["steps"] == 50_000 // 40 * 8
    assert r["train_seconds_ratio"] == pytest.approx(recipe["train_seconds"] / anchor["train_seconds"])
    crop_steps = 50_000 // 40 * 3                                                 # 3 of the 8 epochs on crops
    whole_steps = recipe["steps"] - crop_steps
    projected = crop_steps * crop["median_step_seconds"] + whole_steps * recipe["median_step_seconds"]
    assert crop["projected"]["train_seconds"] == pytest.approx(projected)
    assert crop["projected"]["train_seconds_ratio"] == pytest.approx(projected / anchor["train_seconds"])
    assert "recipe / anchor" in result.stdout and "first 3 epochs on crops" in result.stdout


@pytest.mark.parametrize("flags, fragment", [(["--batch-scale", "2"], "--batch-scale"),
                                             (["--crop-size", "24"], "go together"),
                                             (["--crop-size", "24", "--crop-epochs", "9"], "--crop-epochs")])
def test_step_ratio_benchmark_refuses_bad_flags(tmp_path, flags, fragment):
    result = run_script("benchmarks/cifar_step_ratio.py", *flags, "--out", tmp_path, cwd=tmp_path)
    assert_user_error(result, fragment)
