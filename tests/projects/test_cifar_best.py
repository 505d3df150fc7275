"""projects/cifar_best: the screening and the final recipe on a few hundred real CIFAR-10 images, an
ablation table that reads only its run folders, what TTA, EMA, Lookahead, alternating flip and the
whitening stem do (as documented), and bad input."""
import json

import numpy as np
import pytest

from shared_utils.study import StudyResult
from tests.conftest import assert_user_error, requires, run_script, sizes

torch = pytest.importorskip("torch")

from projects.cifar_best import ablation, recipe, screen, training  # noqa: E402
from shared_utils.pytorch.engine import (TTA_VIEWS, Lookahead, TestTimeAugmentation, TrainConfig, fit,  # noqa: E402
                                         load_final)
from shared_utils.pytorch import device as torch_device  # noqa: E402
from shared_utils.pytorch.models import FastNet  # noqa: E402
from shared_utils.pytorch.pipeline import TensorLoader, alternating_flip  # noqa: E402
from shared_utils.runs import RunDir  # noqa: E402

CPU = torch.device("cpu")


# two groups of two conditions each, the first a batch-size choice that the second group must inherit
SMALL_SPACE = {"batch": {"batch 512": {}, "batch 256": {"batch_size": 256, "lr_x": 0.5}},
               "batchnorm": {"momentum 0.1": {}, "momentum 0.4": {"bn_momentum": 0.4}}}


@requires("cifar10")
@pytest.mark.parametrize("scale", [
    pytest.param("tiny", id="tiny"),                                      # a 2 x 2 space, 32 images each
    pytest.param("quick", id="quick", marks=pytest.mark.slow),           # the real groups, the --quick preset
])
def test_quick_screening_halves_each_group_and_carries_the_winner_on(tmp_path, scale):
    groups = {g: screen.GROUPS[g] for g in ("batch", "batchnorm")}
    flags = ["--groups", "batch", "batchnorm"]
    if scale == "tiny":
        groups = SMALL_SPACE
        (tmp_path / "space.json").write_text(json.dumps(SMALL_SPACE))
        flags = ["--space", tmp_path / "space.json", "--limit-train", "64", "--val-size", "32", "--test-subset", "32"]
    result = run_script("projects/cifar_best/screen.py", "--quick", "--quiet", *flags, "--out", tmp_path / "out",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    for group in groups:
        n = len(groups[group])
        halving = json.loads((out / f"screen_{group}" / "halving.json").read_text())
        first, last = halving["rounds"]
        assert (first["budget"], last["budget"]) == (1, 2) and len(first["scores"]) == n
        assert len(last["scores"]) == n // 2 and len(last["kept"]) == 1
        assert set(last["scores"]) == set(first["kept"])           # only the kept half continued
        ranking = (out / f"screen_{group}" / "ranking.md").read_text()
        assert "images/s" in ranking and ranking.count("\n| ") == n + 1   # header and one row per condition
    summary = json.loads((out / "screen_summary.json").read_text())
    winner = summary["batch"]["winner"]
    assert winner in groups["batch"] and summary["recipe"]["batch_size"] == \
        screen.resolve(screen.START, groups["batch"][winner])["batch_size"]
    # the later group trained on the earlier winner's batch size
    trial = json.loads(next((out / "screen_batchnorm").glob("*/seed_0/trial.json")).read_text())
    assert trial["batch_size"] == summary["recipe"]["batch_size"]
    # a survivor continued from its checkpoint: 2 epochs in all, one metrics row each
    screened = StudyResult.load(out / "screen_batchnorm")          # every condition, at the last round it reached
    assert len(screened.conditions) == len(groups["batchnorm"])
    rows = screened.artifact(summary["batchnorm"]["winner"], 0, "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2


@requires("cifar10")
@sizes("--limit-train", "600", "--test-subset", "200", "--batch-size", "50", "--lr", "0.05", "--model", "fastnet_small",
       "--augment", "flip", "cutout", images=(600, 256), floor=(0.15, None))
def test_quick_recipe_scores_the_test_set_every_epoch_and_reports_the_last(tmp_path, size):
    result = run_script("projects/cifar_best/recipe.py", "--recipe", "sgd", "--quick", *size.flags, "--quiet",
                        "--epochs", "2",
                        "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "recipe" / "recipe" / "seed_0"
    trial = json.loads((run / "trial.json").read_text())
    if size.flags:                                   # --model, --augment and --lr override the recipe's block
        assert (trial["model"], trial["augment"], trial["lr"]) == ("fastnet_small", ["flip", "cutout"], 0.05)
        assert trial["weight_decay"] == recipe.HP["weight_decay"]           # the rest of the block as it was
    assert trial["epochs"] == 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_is_test"] and summary["train_images"] == size.expect["images"] and summary["epochs"] == 2
    assert set(TTA_VIEWS) <= {k.removeprefix("test_acc_tta_") for k in summary}
    # the reported figure is the final weights' test accuracy with the recipe's TTA; the curve in metrics.csv
    # scores the same weights every epoch with curve_tta, so its last point is that view's final score
    metrics = (run / "metrics.csv").read_text().splitlines()
    last_val = float(metrics[-1].split(",")[metrics[0].split(",").index("val_acc")])
    assert summary[f"test_acc_tta_{recipe.HP['curve_tta']}"] == pytest.approx(last_val, abs=1e-6)
    assert summary["test_acc"] == summary[f"test_acc_tta_{recipe.HP['tta']}"]
    if size.expect["floor"]:       # 600 images, 2 epochs, flip + cutout: 18.5% on 200 test images; chance 10% (sd 2.1)
        assert summary["test_acc"] > size.expect["floor"], summary["test_acc"]
    assert summary["precision"] in ("bf16", "fp32") and summary["cpu"]
    for name in ("time_to_accuracy.png", "table.md", "bars.png"):
        assert (tmp_path / "recipe" / name).is_file(), name


def write_summary(folder, test_acc, val_acc, seconds=10.0, **extra):
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"test_acc": test_acc, "final_val_acc": val_acc,
                                                     "train_seconds": seconds, **extra}))


def test_ablation_table_is_read_from_the_run_folders_with_paired_drops(tmp_path):
    conditions = ablation.removals(recipe.HP)
    assert "full recipe" in conditions and "- flip" in conditions
    assert all(len(o) == 1 for c, o in conditions.items() if c != "full recipe")     # one component each
    study = tmp_path / "ablation"
    full, noflip = [0.80, 0.82, 0.81], [0.78, 0.79, 0.80]
    for seed in range(3):
        write_summary(study / "full_recipe" / f"seed_{seed}", full[seed], 0.8, test_acc_tta_none=full[seed] - 0.005)
        write_summary(study / "-_flip" / f"seed_{seed}", noflip[seed], 0.7)
    (study / "manifest.json").write_text(json.dumps({   # what the study runner records beside the trials
        "study": "ablation", "conditions": ["full recipe", "- flip"], "seeds": [0, 1, 2],
        "trials": [{"condition": c, "seed": s, "status": "done", "run_dir": f"{folder}/seed_{s}"}
                   for c, folder in (("full recipe", "full_recipe"), ("- flip", "-_flip")) for s in range(3)]}))
    table, text = ablation.table_from_folders(study, conditions)
    no_tta = "- test-time augmentation (same weights)"
    assert set(table) == {"full recipe", "- flip", no_tta}          # what the folders hold, nothing invented
    assert table["- flip"]["drop vs full (points)"] == pytest.approx([2.0, 3.0, 1.0])
    # TTA is removed on the full recipe's own weights: its drop is that run's TTA gain, seed by seed
    assert table[no_tta]["drop vs full (points)"] == pytest.approx([0.5, 0.5, 0.5])
    assert "| - flip | 3 |" in (study / "ablation.md").read_text()
    # --report-only rebuilds the same table without training
    result = run_script("projects/cifar_best/ablation.py", "--report-only", "--seeds", "0", "1", "2",
                        "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2.00 ± 1.00" in (study / "ablation.md").read_text() and (study / "drops.png").is_file()


def right(x):
    """The batch moved one pixel right, its first column repeated."""
    return torch.cat([x[..., :1], x[..., :-1]], dim=3)


def left(x):
    return torch.cat([x[..., 1:], x[..., -1:]], dim=3)


def test_drops_figure_says_how_many_seeds_each_bar_averages(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(ablation.plots, "grouped_bars", lambda means, path, **kw: drawn.append((means, kw)))
    drop = "drop (points)"
    # a study part-way through: one condition has three seeds, another one
    ablation.drops_figure({"ref": {}, "a": {drop: [1.0, 2.0, 3.0]}, "b": {drop: [0.5]}}, drop, tmp_path / "d.png",
                          xlabel="x", title="T", budget="8 epochs")
    means, kw = drawn[-1]
    assert set(means) == {"a [3]", "b [1]"} and means["a [3]"]["drop (mean, 95% CI)"] == pytest.approx(2.0)
    assert kw["errors"]["b [1]"]["drop (mean, 95% CI)"] == 0.0           # one seed: no interval drawn
    assert "seeds per bar in [ ]" in kw["title"] and "8 epochs" in kw["title"]
    # every condition with the same seeds: plain labels, the count in the title
    ablation.drops_figure({"a": {drop: [1.0, 2.0, 3.0]}, "b": {drop: [0.5, 1.0, 1.5]}}, drop, tmp_path / "d.png",
                          xlabel="x", title="T", budget="8 epochs")
    means, kw = drawn[-1]
    assert set(means) == {"a", "b"} and "over 3 seeds;" in kw["title"]
    assert kw["errors"]["a"]["drop (mean, 95% CI)"] == pytest.approx(2.484, abs=1e-3)   # t(0.975, 2) * 1 / sqrt(3)


def test_tta_averages_the_documented_views():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5)).eval()
    x = torch.randn(2, 3, 8, 8)
    flip = TestTimeAugmentation(model, "flip")(x)
    assert torch.allclose(flip, (model(x) + model(x.flip(3))) / 2, atol=1e-6)
    six = TestTimeAugmentation(model, "flip_translate")(x)
    mirrored = x.flip(3)
    views = [x, right(x), left(x), mirrored, right(mirrored), left(mirrored)]
    assert torch.allclose(six, torch.stack([model(v) for v in views]).mean(0), atol=1e-6)
    assert not torch.allclose(six, flip, atol=1e-4)      # the shifted views do change the prediction


def test_ema_weights_are_the_documented_average_and_load_final_returns_them(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    model = torch.nn.Linear(5, 3)
    replay = torch.nn.Linear(5, 3)
    replay.load_state_dict(model.state_dict())
    cfg = TrainConfig(epochs=2, lr=0.1, momentum=0.0, weight_decay=0.0, schedule="none", ema_decay=0.9,
                      best_metric="train_acc")
    run = RunDir(__file__, "ema", path=tmp_path / "run")
    fit(model, TensorLoader(x, y, batch_size=16, seed=0), None, cfg, device=CPU, run=run)
    # replay the same 8 steps by hand, averaging as documented: the first step copies, then 0.9 old + 0.1 new
    opt = torch.optim.SGD(replay.parameters(), lr=0.1)
    loader, avg = TensorLoader(x, y, batch_size=16, seed=0), None
    for _ in range(2):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(replay(xb), yb).backward()
            opt.step()
            now = [p.detach().clone() for p in replay.parameters()]
            avg = now if avg is None else [0.9 * a + 0.1 * n for a, n in zip(avg, now)]
    assert torch.allclose(model.weight, replay.weight, atol=1e-6)   # the same training
    final = load_final(torch.nn.Linear(5, 3), run)
    for got, want in zip(final.parameters(), avg):
        assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(final.weight, model.weight, atol=1e-4)   # the average, not the last weights


def test_lookahead_moves_slow_weights_alpha_of_the_way_every_k_steps():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=1.0)
    look = Lookahead(opt, k=2, alpha=0.5)
    for step in range(4):
        w.grad = torch.full((1,), -1.0)       # each fast step adds 1
        opt.step()
        look.step()
        if step == 1:
            assert w.item() == pytest.approx(1.0)     # slow 0 -> 0 + 0.5 * (2 - 0)
    assert w.item() == pytest.approx(2.0)             # slow 1 -> 1 + 0.5 * (3 - 1)
    state = look.state_dict()
    assert state["steps"] == 4 and state["slow"][0].item() == pytest.approx(2.0)


def test_alternating_flip_shows_each_image_once_each_way_over_two_epochs():
    x = torch.arange(2 * 1 * 1 * 4, dtype=torch.float32).reshape(2, 1, 1, 4).repeat(50, 1, 1, 1)
    index = torch.arange(len(x))
    flip = alternating_flip(seed=0)
    e0, e1 = flip(x, index, 0, None), flip(x, index, 1, None)
    flipped0 = (e0 != x).any(dim=(1, 2, 3))
    flipped1 = (e1 != x).any(dim=(1, 2, 3))
    assert bool((flipped0 ^ flipped1).all())                  # every image: one epoch as it is, one mirrored
    assert 0.3 < flipped0.float().mean() < 0.7                # about half flipped in the first epoch
    assert torch.equal(flip(x, index, 2, None), e0)           # and the pattern repeats


def test_whitening_stem_decorrelates_the_patches():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 1, 16, 16))
    images = torch.tensor(np.concatenate([base, 0.5 * base + 0.1 * rng.normal(size=base.shape),
                                          rng.normal(size=base.shape)], axis=1), dtype=torch.float32)
    net = FastNet(widths=(8, 8, 8))
    net.init_whitening(images, eps=0.0)
    out = net.stem(images)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    cov = torch.cov(out.T)
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=0.05)
    assert out.mean(0).abs().max() < 1e-3
    assert not net.stem.weight.requires_grad


def test_cpu_bfloat16_autocast_is_opt_in():
    cfg = TrainConfig()
    with cfg.autocast(CPU):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32
    with TrainConfig(cpu_amp=True).autocast(CPU):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.bfloat16
    assert not cfg.uses_channels_last(CPU) and TrainConfig(cpu_channels_last=True).uses_channels_last(CPU)


def test_precision_auto_uses_each_devices_fast_path_and_fp32_overrides_it(monkeypatch):
    config = dict(recipe.HP, seed=0)
    cuda = torch.device("cuda")    # a config question: nothing runs on the device
    cfg = training.train_config(config, 10, training.resolve_precision(config, cuda))
    assert training.resolve_precision(config, cuda) == "fp16" and cfg.amp and cfg.channels_last and not cfg.cpu_amp
    monkeypatch.setattr(training.runs, "cpu_features", lambda: ["avx2", "avx512f"])       # AMD Zen 3, say
    assert training.resolve_precision(config, CPU) == "fp32"
    assert not training.train_config(config, 10, "fp32").uses_channels_last(CPU)
    monkeypatch.setattr(training.runs, "cpu_features", lambda: ["avx2", "avx512f", "avx512_bf16"])
    monkeypatch.setattr(torch_device, "bf16_probe", lambda: {"fp32_seconds": 0.3, "bf16_seconds": 0.1})  # AMX, say
    cfg = training.train_config(config, 10, training.resolve_precision(config, CPU))
    assert cfg.cpu_amp and cfg.uses_channels_last(CPU)
    monkeypatch.setattr(torch_device, "bf16_probe", lambda: {"fp32_seconds": 0.3, "bf16_seconds": 0.4})  # no AMX
    assert training.resolve_precision(config, CPU) == "fp32"
    assert training.resolve_precision({**config, "precision": "fp32"}, CPU) == "fp32"
    assert training.resolve_precision(config, torch.device("mps")) == "fp32"


def test_linear_schedule_decays_to_zero_after_its_warmup():
    from shared_utils.pytorch.engine import make_scheduler

    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=1.0)
    sched = make_scheduler(opt, TrainConfig(epochs=2, schedule="linear", warmup_epochs=0.5), steps_per_epoch=10)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert lrs[5] == pytest.approx(1.0) and lrs[-1] == pytest.approx(1 / 15) and lrs == sorted(lrs[:5]) + lrs[5:]


def test_an_unknown_component_is_refused_before_anything_trains():
    with pytest.raises(Exception, match="unknown model 'vgg'"):
        training.check_config({**screen.START, "model": "vgg"})
    with pytest.raises(Exception, match="unknown augmentation 'mixup'"):
        training.check_config({**screen.START, "augment": ["flip", "mixup"]})


@pytest.mark.parametrize("space, fragment", [
    ({"model": {"vgg": {"model": "vgg16"}}}, "unknown model 'vgg16'"),
    ({"augment": {"colour": {"augment": ["colour"]}}}, "unknown augmentation 'colour'"),
    ({"optimizer": {"lion": {"optimiser": "lion"}}}, "unknown component 'optimiser'"),
    ([1, 2], "expected {group"),
])
def test_screen_refuses_a_bad_search_space_in_one_line(tmp_path, space, fragment):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    result = run_script("projects/cifar_best/screen.py", "--quick", "--space", path, "--out", tmp_path / "out",
                        cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("args, fragment", [
    (["--eta", "1"], "--eta must be at least 2"),
    (["--groups", "optimiser"], "unknown screening group 'optimiser'"),
    (["--budgets", "4", "2"], "--budgets must increase"),
])
def test_screen_refuses_bad_settings_in_one_line(tmp_path, args, fragment):
    result = run_script("projects/cifar_best/screen.py", "--quick", *args, "--out", tmp_path / "out", cwd=tmp_path)
    assert_user_error(result, fragment)


@pytest.mark.parametrize("flags, fragment", [
    (["--long"], "--recipe sgd"),
    (["--crop-epochs", "1"], "--crop-epochs needs --crop-size"),
    (["--crop-size", "24", "--crop-epochs", "2"], "--crop-epochs must be from 1 to the 1 epochs"),   # --quick: 1
    (["--crop-size", "8", "--crop-epochs", "1"], "expected an integer from 10 to 31"),
    (["--recipe", "sgd", "--crop-size", "24"], "belong to --recipe muon"),
])
def test_each_recipe_refuses_the_other_recipes_flags(tmp_path, flags, fragment):
    result = run_script("projects/cifar_best/recipe.py", "--quick", *flags, "--out", tmp_path / "o", cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not any((tmp_path / "o").rglob("*"))             # the --out folder is checked, nothing written in it


def test_recipe_refuses_an_unknown_precision(tmp_path):
    result = run_script("projects/cifar_best/recipe.py", "--quick", "--precision", "fp8", "--out", tmp_path / "o",
                        cwd=tmp_path)
    assert_user_error(result, "--precision")


# --------------------------------------------------------------------------- the Muon recipe's ablation
def test_muon_ablation_undoes_one_change_per_condition():
    from projects.cifar_best import muon_ablation as mab
    from shared_utils.pytorch import airbench

    grid = mab.conditions(8, 2000)
    assert list(grid)[0] == mab.REFERENCE and grid[mab.REFERENCE] == {}
    assert all(len(o) == 1 for c, o in grid.items() if c != mab.REFERENCE)          # one change each
    base = {"optimizer": "muon", "averaging": False}
    settings = {c: mab.settings_for({**base, **o}) for c, o in grid.items()}
    assert settings[mab.REFERENCE] == airbench.AIRBENCH94_MUON
    assert settings["SGD instead of Muon (the anchor's optimizer)"] is airbench.AIRBENCH94
    averaged = settings["+ the anchor's weight averaging"]
    assert {k: v for k, v in averaged.items() if k not in mab.AVERAGING} == airbench.AIRBENCH94_MUON
    assert all(averaged[k] == airbench.AIRBENCH94[k] for k in mab.AVERAGING)
    assert grid["one epoch fewer (7 instead of 8)"] == {"epochs": 7} and grid["batch 1024 instead of 2000"] == {
        "batch_size": 1024}


@requires("cifar10")
def test_muon_ablation_trains_its_conditions_and_reads_the_paired_table_back(tmp_path):
    from projects.cifar_best import muon_ablation as mab

    flags = ["--quick", "--limit-train", "64", "--test-subset", "40", "--batch-size", "32", "--quiet",
             "--conditions", "+ the anchor's weight averaging"]
    table = mab.main(flags + ["--out", str(tmp_path), "--records", str(tmp_path / "kept")])
    study = tmp_path / "muon_ablation"
    reference = json.loads((study / "Muon_recipe" / "seed_0" / "summary.json").read_text())
    averaged = json.loads(next(study.glob("+_the_anchor*/seed_0/summary.json")).read_text())
    assert reference["optimizer"] == averaged["optimizer"] == "muon" and reference["steps"] == averaged["steps"] == 4
    # the table is read back from the folders; the same-weights rows are the reference run's other views
    drop = "drop vs the Muon recipe (points)"
    assert table["+ the anchor's weight averaging"][drop] == pytest.approx(
        [100 * (reference["test_acc"] - averaged["test_acc"])])
    assert table["one view instead of six (same weights)"][drop] == pytest.approx(
        [100 * (reference["test_acc"] - reference["test_acc_tta_none"])])
    # time as a paired ratio: the condition's counted seconds over the reference's in the same seed
    ratio = mab.TIME_RATIO[0]
    assert table["+ the anchor's weight averaging"][ratio] == pytest.approx(
        [averaged["counted_seconds"] / reference["counted_seconds"]])
    assert ratio not in table["one view instead of six (same weights)"]      # not trained: no time of its own
    assert "| + the anchor's weight averaging | 1 |" in (study / "muon_ablation.md").read_text()
    assert (study / "drops.png").is_file()
    # the records (JSON, no weights) alone give the same table: what a later session on another machine reads
    assert not list((tmp_path / "kept").rglob("*.pt"))
    assert mab.main(flags + ["--report-only", "--out", str(tmp_path / "kept")]) == table
    # runs that differ in the allocator setting: the caption says their seconds do not compare
    assert mab.allocator_note(study) == ""
    path = next(study.glob("+_the_anchor*/seed_0/summary.json"))
    path.write_text(json.dumps({**averaged, "freed_memory_kept": False}))
    assert "Seed(s) 0 ran without freed memory kept" in mab.allocator_note(study)


def test_muon_ablation_takes_recipe_runs_of_the_same_settings_instead_of_training_them_twice(tmp_path):
    from projects.cifar_best import muon_ablation as mab

    sizes_ = ["--limit-train", "64", "--test-subset", "40", "--batch-size", "32", "--epochs", "2", "--quiet"]
    recipe.main(sizes_ + ["--seeds", "0", "--out", str(tmp_path / "r")])          # recipe.py's own run
    source = tmp_path / "r" / "recipe_muon"
    flags = sizes_ + ["--conditions", "one epoch fewer (1 instead of 2)", "--out", str(tmp_path), "--resume",
                      "--recipe-runs", str(source)]
    table = mab.main(flags)
    folder = tmp_path / "muon_ablation" / "Muon_recipe" / "seed_0"
    theirs = json.loads((source / "recipe" / "seed_0" / "summary.json").read_text())
    ours = json.loads((folder / "summary.json").read_text())
    assert not list(folder.glob("*.pt")) and ours["adopted_from"] == str(source / "recipe" / "seed_0")
    assert table["one epoch fewer (1 instead of 2)"]["drop vs the Muon recipe (points)"] == pytest.approx(
        [100 * (theirs["test_acc"] - json.loads(next(folder.parent.parent.glob("one_epoch*/seed_0/summary.json"))
                                                .read_text())["test_acc"])])
    # a recipe run made with other settings is refused with one line, and nothing of it is copied
    recipe.main(sizes_[:-3] + ["--epochs", "3", "--quiet", "--seeds", "1", "--out", str(tmp_path / "r")])
    result = run_script("projects/cifar_best/muon_ablation.py", *sizes_, "--seeds", "1", "--out", tmp_path / "o",
                        "--resume", "--recipe-runs", source, cwd=tmp_path)
    assert_user_error(result, "other settings (epochs)")
    assert not (tmp_path / "o" / "muon_ablation" / "Muon_recipe" / "seed_1" / "summary.json").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--recipe-runs", "."], "--recipe-runs needs --resume"),
    (["--recipe-runs", "nowhere", "--resume"], "no recipe.py runs there"),
    (["--epochs", "1"], "--epochs must be at least 2"),
    (["--conditions", "no such change"], "unknown condition"),
    (["--lr", "0.5"], "--lr does not apply"),
])
def test_muon_ablation_bad_input_exits_2_with_one_line(tmp_path, args, fragment):
    result = run_script("projects/cifar_best/muon_ablation.py", "--quick", "--out", tmp_path / "out", *args,
                        cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
