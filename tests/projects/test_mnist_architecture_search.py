"""projects/mnist_architecture_search: the --quick pipeline on real MNIST, a report built only from run
folders, and bad input."""
import json
import shutil

import pytest

from tests.conftest import assert_user_error, requires, run_script

pytest.importorskip("torch")
SCRIPT = "projects/mnist_architecture_search/search.py"


@requires("mnist")
def test_quick_study_writes_its_tables_and_figures_and_reports_only_what_its_folders_hold(tmp_path):
    result = run_script(SCRIPT, "--quick", "--quiet", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("pareto_parameters.png", "pareto_train_flops.png", "pareto_train_seconds.png",
                 "optim_act/heatmap.png", "depth_width/accuracy_vs_depth.png", "baseline/table.md", "cnn/table.md"):
        assert (tmp_path / name).is_file(), name
    table = (tmp_path / "depth_width" / "accuracy_by_budget_and_depth.md").read_text()
    assert "| 10,000 |" in table and "missing" not in table
    summary = json.loads((tmp_path / "cnn" / "cnn_10k" / "seed_0" / "summary.json").read_text())
    assert abs(summary["parameters"] - 10_000) <= 200 and summary["train_flops"] > 0
    assert summary["test_acc"] > 0.5                        # 2,500 images, 2 epochs; chance is 0.10
    # the report reads run folders: delete one and it says so instead of inventing a number
    shutil.rmtree(tmp_path / "depth_width" / "10k_depth_3")
    result = run_script(SCRIPT, "--quick", "--quiet", "--out", tmp_path, "--report-only", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "depth_width" / "accuracy_by_budget_and_depth.md").read_text()
    assert table.count("missing") == 1 and not (tmp_path / "depth_width" / "10k_depth_3").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--budgets", "700", "--depths", "6"], "too small for 6 hidden layer(s)"),
    (["--optimizers", "Adagrad"], "--optimizers"),
    (["--activations", "swish"], "--activations"),
    (["--budgets", "0"], "--budgets"),
])
def test_bad_study_settings_exit_2_with_one_line(tmp_path, args, fragment):
    result = run_script(SCRIPT, "--quick", "--out", tmp_path / "out", *args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
