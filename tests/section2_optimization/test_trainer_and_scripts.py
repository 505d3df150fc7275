"""The shared NumPy training loop, and smoke runs of every section 2 script."""
import json

import numpy as np
import pytest

from section2_optimization import layers, losses
from section2_optimization.optim import SGD, Adam
from section2_optimization.trainer import TrainingDiverged, evaluate, fit
from shared_utils import data, runs
from shared_utils.errors import UserError
from tests.conftest import run_script


def digits_arrays():
    ds = data.digits(val_size=200, seed=0)
    return [ds.arrays(s, flatten=True) for s in ("train", "val", "test")]


def test_layer_library_network_reaches_95_percent_on_real_digits(tmp_path):
    train, val, test = digits_arrays()
    model = layers.mlp([64, 128, 10], activation="relu", batchnorm=True, dropout=0.1, seed=0)
    run = runs.RunDir(__file__, "digits", argparse_namespace(tmp_path))
    history = fit(model, losses.softmax_cross_entropy, Adam(model.parameters(), lr=1e-3), train, val,
                  epochs=15, batch_size=32, seed=0, run=run)
    model.load_state_dict(runs.load_npz(run / "best.npz"))  # the best checkpoint round-trips
    _, test_acc = evaluate(model, losses.softmax_cross_entropy, *test)
    assert test_acc >= 0.95, test_acc
    assert runs.read_metrics(run.path)["epoch"].tolist() == list(range(1, 16))
    assert history.best_epoch == int(np.argmax(history.column("val_acc"))) + 1


def argparse_namespace(out):
    import argparse
    return argparse.Namespace(out=out)


def test_same_seed_same_result():
    train, val, _ = digits_arrays()
    finals = []
    for _ in range(2):
        model = layers.mlp([64, 32, 10], dropout=0.2, seed=3)
        h = fit(model, losses.softmax_cross_entropy, SGD(model.parameters(), lr=0.05), train, val,
                epochs=2, batch_size=64, seed=3)
        finals.append(h.column("train_loss"))
    np.testing.assert_array_equal(finals[0], finals[1])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that produces the NaN is the point
def test_nan_loss_stops_with_a_clear_message():
    train, val, _ = digits_arrays()
    model = layers.mlp([64, 32, 10], seed=0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        fit(model, losses.softmax_cross_entropy, SGD(model.parameters(), lr=1e30), train, val,
            epochs=1, batch_size=64)
    assert issubclass(TrainingDiverged, UserError)  # scripts turn it into exit code 2


def script(name, tmp_path, *args, expect=0):
    result = run_script(f"section2_optimization/{name}", "--quiet", "--out", tmp_path, *args, cwd=tmp_path)
    assert result.returncode == expect, result.stderr
    return result


def test_gradient_checking_script_passes_and_catches_a_planted_bug(tmp_path):
    result = script("gradient_checking.py", tmp_path)
    assert "28/28 gradient checks passed" in result.stdout
    summary = runs.read_summary(tmp_path / "gradient_checking")
    assert summary["max_rel_error"] < 1e-6 and summary["failed"] == []
    assert (tmp_path / "gradient_checking" / "errors.png").is_file()
    bug = script("gradient_checking.py", tmp_path, "--plant-bug", expect=1)
    assert "Tanh (planted bug): input" in bug.stderr
    assert runs.read_summary(tmp_path / "gradient_checking_bug")["max_rel_error"] > 1e-2


def test_optimizer_comparison_script(tmp_path):
    script("optimizer_comparison.py", tmp_path, "--quick", "--datasets", "moons", "--optimizers", "SGD", "Adam")
    root = tmp_path / "optimizer_compare"
    for name in ("moons/table.md", "moons/curves.png", "moons/bars.png", "moons/boundaries.png",
                 "trajectory_rosenbrock.png", "trajectory_beale.png", "trajectory_saddle.png"):
        assert (root / name).is_file(), name
    # same initial weights and batches: after 5 epochs on moons both optimizers beat chance clearly
    for name in ("SGD", "Adam"):
        assert runs.read_summary(root / "moons" / name / "seed_0")["final_val_acc_model"] > 0.75
    finals = json.loads((root / "trajectories.json").read_text())
    # Adam walks the Rosenbrock valley far closer to the minimum than plain SGD in 1000 steps
    assert finals["rosenbrock"]["Adam"]["value"] < finals["rosenbrock"]["SGD"]["value"] / 10
    assert finals["saddle"]["Adam"]["value"] < -0.2  # escaped the saddle to a minimum (-0.25)


def test_initialization_script_shows_dead_relus(tmp_path):
    script("initialization.py", tmp_path, "--quick", "--depth", "8", "--width", "64")
    dead = runs.read_summary(tmp_path / "initialization" / "dying_relu" / "dead")
    he = runs.read_summary(tmp_path / "initialization" / "dying_relu" / "he")
    assert dead["max_abs_weight_grad"] == 0.0 and dead["share_units_alive"] == 0.0
    assert dead["final_train_loss"] == pytest.approx(np.log(10), abs=0.01)
    assert he["final_train_loss"] < 1.5
    prop = json.loads((tmp_path / "initialization" / "propagation.json").read_text())
    he_relu, small = prop["relu/He"]["activation_std"], prop["relu/small normal (0.01)"]["activation_std"]
    assert 0.2 < he_relu[-1] / he_relu[0] < 5 and small[-1] < 1e-8 * small[0]


def test_loss_and_regularization_script(tmp_path):
    script("loss_and_regularization.py", tmp_path, "--quick", "--seeds", "0", "1")
    root = tmp_path / "loss_and_regularization"
    for i in (1, 2, 3):
        # 5 epochs of Adam at 1e-3 leave every source net far below the 95% a perfect fit reaches: under-fit,
        # and the diagnosis must say so from the curves (training accuracy, not validation, is the evidence)
        s = runs.read_summary(root / f"source_{i}")
        assert s["diagnosis"] == "under-fit" and s["final_train_acc"] < 0.85, s
    controlled = json.loads((root / "controlled.json").read_text())
    assert len(controlled) == 11 and all(len(v["val acc (%)"]) == 2 for v in controlled.values())
    # the shared baseline is trained once and reported in every group
    assert controlled["loss: BCE"] == controlled["regularisation: none"] == controlled["depth: 1 hidden layer"]
    assert len(list((root / "controlled").glob("*/seed_*"))) == 8 * 2
    assert (root / "controlled.png").is_file() and "±" in (root / "controlled.md").read_text()


def test_diagnosis_rules():
    from section2_optimization.loss_and_regularization import diagnose
    from section2_optimization.trainer import History

    def history(train_acc, val_acc, val_loss):
        return History(rows=[{"train_acc": a, "val_acc": b, "val_loss": c} for a, b, c in zip(train_acc, val_acc, val_loss)])

    assert diagnose(history([0.6, 0.7], [0.6, 0.7], [0.7, 0.6])) == "under-fit"
    assert diagnose(history([0.9, 0.99], [0.9, 0.88], [0.3, 0.5])) == "over-fit"
    assert diagnose(history([0.88, 0.9], [0.87, 0.89], [0.35, 0.3])) == "good fit"
