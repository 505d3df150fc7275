"""projects/mnist_architecture_search: the --quick pipeline on real MNIST, a report built only from run
folders, and bad input."""
import json
import shutil

import pytest

from tests.conftest import assert_user_error, requires, run_script

pytest.importorskip("torch")
SCRIPT = "projects/mnist_architecture_search/search.py"


@requires("mnist")
def test_budget_grid_learns_on_real_mnist_and_the_report_reads_only_its_folders(tmp_path):
    """The default tier's real-data check: two parts of the study on 1,500 images."""
    result = run_script(SCRIPT, "--quick", "--quiet", "--parts", "baseline", "depth_width", "--limit-train", "1500",
                        "--depths", "1", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "depth_width" / "accuracy_by_budget_and_depth.md").read_text()
    assert "| 10,000 |" in table and "| 50,000 |" in table and "missing" not in table
    mlp = json.loads((tmp_path / "depth_width" / "50k_depth_1" / "seed_0" / "summary.json").read_text())
    assert abs(mlp["parameters"] - 50_000) <= 1_000 and mlp["train_flops"] > 0
    assert mlp["test_acc"] > 0.5                    # 1,250 training images, 2 epochs: about 72%; chance is 10%
    linear = json.loads((tmp_path / "baseline" / "linear" / "seed_0" / "summary.json").read_text())
    assert linear["test_acc"] > 0.5
    # the report reads run folders: delete one and it says so instead of inventing a number
    shutil.rmtree(tmp_path / "depth_width" / "50k_depth_1")
    result = run_script(SCRIPT, "--quick", "--quiet", "--parts", "baseline", "depth_width", "--limit-train", "1500",
                        "--depths", "1", "--out", tmp_path, "--report-only", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "depth_width" / "accuracy_by_budget_and_depth.md").read_text()
    assert table.count("missing") == 1 and not (tmp_path / "depth_width" / "50k_depth_1").exists()


@pytest.mark.slow
@requires("mnist")
def test_quick_study_writes_its_tables_and_figures_and_reports_only_what_its_folders_hold(tmp_path):
    result = run_script(SCRIPT, "--quick", "--quiet", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("pareto_parameters.png", "pareto_train_flops.png", "pareto_train_seconds.png",
                 "optim_act/heatmap.png", "optim_act/curves_by_optimizer.png", "depth_width/accuracy_vs_depth.png", "depth_width/curves_by_budget.png",
                 "depth_width/epochs_to_98.md", "baseline/table.md", "cnn/table.md", "recipe/accuracy_by_recipe.png",
                 "curves_table.md", "curves_what_accuracy_hides.png"):
        assert (tmp_path / name).is_file(), name
    table = (tmp_path / "depth_width" / "accuracy_by_budget_and_depth.md").read_text()
    assert "| 10,000 |" in table and "missing" not in table
    summary = json.loads((tmp_path / "cnn" / "cnn_10k" / "seed_0" / "summary.json").read_text())
    assert abs(summary["parameters"] - 10_000) <= 200 and summary["train_flops"] > 0
    assert summary["test_acc"] > 0.5                        # 2,500 images, 2 epochs; chance is 0.10
    # "2x epochs" doubles the epochs of --epochs; shifts and dropout reach the trial
    doubled = json.loads((tmp_path / "recipe" / "MLP_50k_depth_1_2x_epochs_shift_1px" / "seed_0" / "trial.json").read_text())
    assert (doubled["epochs"], doubled["shift"], doubled["dropout"]) == (4, 1, 0.0)
    metrics = (tmp_path / "recipe" / "MLP_50k_depth_1_2x_epochs" / "seed_0" / "metrics.csv").read_text()
    assert len(metrics.splitlines()) == 1 + 4                # header and 4 epochs
    recipe = (tmp_path / "recipe" / "accuracy_by_recipe.md").read_text()
    assert "missing" not in recipe and "| MLP 50k, depth 1 |" in recipe
    analysis = json.loads((tmp_path / "analysis.json").read_text())
    best = analysis["goals"]["best_mlp"]
    assert best["seeds"] == 1 and best["parameters"] <= 204_000 and not best["met"]   # 2,500 images: far below
    # the report reads run folders: delete one and it says so instead of inventing a number (in the grid's table,
    # and in the recipe table, whose base column is that same trial)
    shutil.rmtree(tmp_path / "depth_width" / "50k_depth_1")
    result = run_script(SCRIPT, "--quick", "--quiet", "--out", tmp_path, "--report-only", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "depth_width" / "accuracy_by_budget_and_depth.md").read_text()
    assert table.count("missing") == 1 and not (tmp_path / "depth_width" / "50k_depth_1").exists()
    row = next(line for line in (tmp_path / "recipe" / "accuracy_by_recipe.md").read_text().splitlines()
               if line.startswith("| MLP 50k"))
    assert row.split("|")[2].strip() == "missing"
    assert "depth_width/50k, depth 1" not in json.loads((tmp_path / "analysis.json").read_text())["curves"]["stats"]


@pytest.mark.parametrize("args, fragment", [
    (["--budgets", "700", "--depths", "6"], "too small for 6 hidden layer(s)"),
    (["--optimizers", "Adagrad"], "--optimizers"),
    (["--activations", "swish"], "--activations"),
    (["--budgets", "0"], "--budgets"),
    (["--recipe-budget", "700", "--recipe-depth", "6"], "too small for 6 hidden layer(s)"),
    (["--recipe-cnn-budgets", "300"], "no two-convolution CNN has 300 parameters"),
])
def test_bad_study_settings_exit_2_with_one_line(tmp_path, args, fragment):
    result = run_script(SCRIPT, "--quick", "--out", tmp_path / "out", *args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
