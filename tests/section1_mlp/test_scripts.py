"""Smoke runs of every section 1 script on real data (MNIST or generated), checking their outputs."""
import json

import numpy as np

from shared_utils import runs
from tests.conftest import assert_user_error, requires, run_script


def run_ok(script, tmp_path, *args):
    result = run_script(f"section1_mlp/{script}", "--quick", "--quiet", "--out", tmp_path, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result


@requires("mnist")
def test_train_and_evaluate(tmp_path):
    run_ok("train.py", tmp_path, "--activations", "relu", "tanh")
    table = (tmp_path / "activation_compare" / "table.md").read_text()
    assert "| relu | 1 |" in table and "| tanh | 1 |" in table
    assert (tmp_path / "activation_compare" / "curves.png").is_file()
    relu = runs.read_summary(tmp_path / "activation_compare" / "relu" / "seed_0")
    assert relu["test_acc"] > 0.85, relu  # 2,500 training images, one epoch; chance is 0.10
    ckpt = tmp_path / "activation_compare" / "relu" / "seed_0" / "best.npz"
    run_ok("evaluate.py", tmp_path, "--ckpt", ckpt)
    ev = tmp_path / "evaluate" / "relu" / "seed_0"
    for name in ("confusion.png", "per_class.png", "confident_mistakes.png"):
        assert (ev / name).is_file()
    summary = runs.read_summary(ev)
    assert abs(summary["test_acc"] - relu["test_acc"]) < 1e-9  # same checkpoint, same test set
    assert len(summary["per_class_acc"]) == 10


def test_evaluate_without_checkpoint_says_which_command_makes_one(tmp_path):
    result = run_script("section1_mlp/evaluate.py", "--ckpt", tmp_path / "missing.npz", cwd=tmp_path)
    assert_user_error(result, "no checkpoint", "python section1_mlp/train.py")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    result = run_script("section1_mlp/evaluate.py", "--ckpt", tmp_path / "bad.npz", cwd=tmp_path)
    assert_user_error(result, "corrupt")


def test_regression_fits_better_than_the_variance(tmp_path):
    run_ok("mlp_regression.py", tmp_path)
    summary = runs.read_summary(tmp_path / "regression" / "sine")
    assert summary["val_mse"] < 0.25  # y = sin(3x) has variance ~0.5; noise variance is 0.01
    assert (tmp_path / "regression" / "sine" / "fit.png").is_file()


def test_universal_approximation_error_falls_with_width(tmp_path):
    run_ok("universal_approximation.py", tmp_path, "--targets", "abs")
    errors = runs.read_json(tmp_path / "universal_approximation" / "grid_mse.json")["abs"]
    assert errors["64"] < errors["1"] / 10, errors
    assert (tmp_path / "universal_approximation" / "error_vs_width.png").is_file()


def test_linear_neuron_recovers_weights_and_collapses(tmp_path):
    result = run_ok("linear_neuron.py", tmp_path)
    s = runs.read_summary(tmp_path / "linear_neuron")
    np.testing.assert_allclose(s["closed_form_weights"], s["true_weights"], atol=0.1)
    assert s["gd_distance_to_closed_form"] < 1e-3
    assert s["composed_map_max_output_gap"] < 1e-4  # three layers are one matrix
    assert s["deep_linear_mse"] >= s["closed_form_mse"] - 1e-9  # and fit no better than least squares
    assert "closed form" in result.stdout


def test_nonlinearity_linear_vs_relu(tmp_path):
    run_ok("nonlinearity.py", tmp_path)
    linear = runs.read_summary(tmp_path / "nonlinearity" / "linear")
    relu = runs.read_summary(tmp_path / "nonlinearity" / "relu_mlp")
    assert linear["val_mse"] > 0.2 and relu["val_mse"] < linear["val_mse"] / 2
    assert (tmp_path / "nonlinearity" / "boundaries.png").is_file()
    assert json.loads((tmp_path / "nonlinearity" / "linear" / "config.json").read_text())["args"]["quick"]
