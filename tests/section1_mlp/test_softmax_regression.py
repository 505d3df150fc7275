import json

import numpy as np

from section1_mlp import softmax_regression as sr
from shared_utils import runs
from tests.conftest import assert_user_error, requires, run_script

SCRIPT = "section1_mlp/softmax_regression.py"


@requires("mnist")
def test_quick_run_on_real_mnist_writes_a_full_run_folder(tmp_path):
    result = run_script(SCRIPT, "--quick", "--quiet", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "softmax_regression" / "softmax_regression" / "seed_0"
    for name in ("config.json", "metrics.csv", "summary.json", "best.npz", "curves.png", "weights.png"):
        assert (run / name).is_file(), name
    summary = runs.read_summary(run)
    assert summary["test_acc"] > 0.80, summary  # chance is 0.10; a linear model on 5k images
    config = json.loads((run / "config.json").read_text())
    assert config["trial"]["epochs"] == 1 and config["trial"]["limit_train"] == 6000   # the --quick preset, recorded
    assert "--quick" in config["command"]
    weights = runs.load_npz(run / "best.npz")
    assert weights["w0"].shape == (784, 10) and weights["meta_sizes"].tolist() == [784, 10]


@requires("mnist")
def test_same_seed_same_metrics(tmp_path):
    first = sr.main(["--quick", "--quiet", "--out", str(tmp_path / "a")])
    second = sr.main(["--quick", "--quiet", "--out", str(tmp_path / "b")])
    assert first[0]["test_acc"] == second[0]["test_acc"]
    a = runs.read_metrics(tmp_path / "a" / "softmax_regression" / "softmax_regression" / "seed_0")
    b = runs.read_metrics(tmp_path / "b" / "softmax_regression" / "softmax_regression" / "seed_0")
    np.testing.assert_array_equal(a["train_loss"], b["train_loss"])


@requires("mnist")
def test_seeds_give_a_mean_std_table(tmp_path):
    sr.main(["--quick", "--quiet", "--seeds", "0", "1", "--out", str(tmp_path)])
    table = (tmp_path / "softmax_regression" / "table.md").read_text()
    assert "±" in table and "softmax regression | 2 |" in table
    assert (tmp_path / "softmax_regression" / "curves.png").is_file()
    manifest = json.loads((tmp_path / "softmax_regression" / "manifest.json").read_text())
    assert [t["seed"] for t in manifest["trials"]] == [0, 1] and manifest["failed"] == 0


def test_bad_flag_exits_2_with_one_line(tmp_path):
    assert_user_error(run_script(SCRIPT, "--epochs", "0", cwd=tmp_path), "--epochs", "positive integer")


def test_missing_data_offline_exits_2_with_one_line(tmp_path):
    # An empty data folder and a network that refuses: a proxy at a closed local port.
    result = run_script(SCRIPT, "--quick", "--data-dir", tmp_path / "empty", cwd=tmp_path,
                        env_extra={"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
                                   "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    assert_user_error(result, "MNIST not found in", "train-images-idx3-ubyte")
    assert not (tmp_path / "runs").exists()
