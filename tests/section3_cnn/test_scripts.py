"""Section 3 scripts on real MNIST: the main job learns, and every script writes its outputs."""
import json
import subprocess
import sys

import numpy as np
import pytest

from section3_cnn.model import load_cnn
from shared_utils import runs
from tests.conftest import REPO, assert_user_error, requires, run_script


def script(name, tmp_path, *args, expect=0):
    result = run_script(f"section3_cnn/{name}", "--quiet", *args, cwd=tmp_path)
    assert result.returncode == expect, result.stderr
    return result


@requires("mnist")
def test_main_job_quick_learns_and_feeds_the_other_scripts(tmp_path):
    script("train_mnist_numpy.py", tmp_path, "--quick", "--out", tmp_path)
    run = tmp_path / "mnist_numpy"
    for name in ("config.json", "metrics.csv", "summary.json", "best.npz", "curves.png"):
        assert (run / name).is_file(), name
    summary = runs.read_summary(run)
    # 2,500 training images, one epoch, scored on the first 2,000 test images; chance is 10%
    assert summary["test_acc"] > 0.75, summary   # with the test-time shifts 81.5%, without 80.6%
    assert summary["test_acc_single_view"] > 0.75, summary
    assert json.loads((run / "config.json").read_text())["args"]["test_subset"] == 2000   # the quick preset's, recorded
    model = load_cnn(run / "best.npz")           # the checkpoint rebuilds its own architecture
    assert model.num_parameters() == summary["parameters"]
    ckpt = str(run / "best.npz")
    script("visualize_filters.py", tmp_path, "--ckpt", ckpt, "--out", tmp_path, "--digits", "1")
    for name in ("filters.png", "feature_maps_conv1.png", "feature_maps_conv2.png"):
        assert (tmp_path / "vis" / name).is_file(), name
    script("saliency.py", tmp_path, "--ckpt", ckpt, "--out", tmp_path, "--count", "3")
    s = runs.read_summary(tmp_path / "saliency")
    assert (tmp_path / "saliency" / "saliency.png").is_file()
    # the gradient concentrates on the strokes: more saliency on ink than ink's share of pixels
    assert s["saliency_share_on_ink"] > s["ink_share_of_pixels"]


def test_missing_or_foreign_checkpoint_names_the_command(tmp_path):
    for name in ("visualize_filters.py", "saliency.py"):
        result = run_script(f"section3_cnn/{name}", "--ckpt", tmp_path / "none.npz", cwd=tmp_path)
        assert_user_error(result, "no checkpoint", "python section3_cnn/train_mnist_numpy.py")
    runs.save_npz(tmp_path / "mlp.npz", {"w0": np.zeros((2, 2))})
    result = run_script("section3_cnn/visualize_filters.py", "--ckpt", tmp_path / "mlp.npz", cwd=tmp_path)
    assert_user_error(result, "not a section 3 CNN checkpoint", "train_mnist_numpy.py")


@requires("mnist")
def test_pooling_comparison_quick(tmp_path):
    script("pooling_comparison.py", tmp_path, "--quick", "--seeds", "0", "1", "--out", tmp_path)
    table = (tmp_path / "pooling_compare" / "table.md").read_text()
    assert "| max | 2 |" in table and "| avg | 2 |" in table and "±" in table
    assert (tmp_path / "pooling_compare" / "bars.png").is_file()
    assert (tmp_path / "pooling_compare" / "curves.png").is_file()
    for pool in ("max", "avg"):
        assert runs.read_summary(tmp_path / "pooling_compare" / pool / "seed_1")["test_acc"] > 0.6


@requires("mnist")
def test_receptive_field_and_conv_mechanics(tmp_path):
    script("receptive_field.py", tmp_path, "--out", tmp_path)
    s = runs.read_summary(tmp_path / "receptive_field")
    assert s["all_equal"] and s["final_fields"]["VGG-16"] == 212
    assert (tmp_path / "receptive_field" / "field_on_digit.png").is_file()
    script("conv_mechanics.py", tmp_path, "--out", tmp_path, "--digits", "2")
    s = runs.read_summary(tmp_path / "conv_mechanics")
    assert max(a["max_abs_diff"] for a in s["loops_vs_im2col"]) < 1e-12
    assert s["output_sizes_all_match"] and s["manual_pool_equals_layer"]
    for name in ("sobel_edges.png", "max_pooling.png", "output_sizes.md"):
        assert (tmp_path / "conv_mechanics" / name).is_file()


@pytest.mark.slow
@requires("mnist")
def test_main_job_reaches_the_accuracy_goal_on_three_seeds_within_a_gigabyte(tmp_path):
    """Issue 32's goal for `python section3_cnn/train_mnist_numpy.py --epochs 5`: mean test accuracy of seeds
    0-2 at least 99.3%, none below 99.2%, peak memory (the job plus its worker process) under 1 GB.
    Measured on the 2-core AMD EPYC: 99.44 / 99.40 / 99.38% (99.23 / 99.29 / 99.27% without the test-time
    shifts), 515-522 MB + 182-184 MB."""
    accuracies = []
    for seed in (0, 1, 2):     # each in its own process, as a user runs it: its peak memory is its own
        subprocess.run([sys.executable, str(REPO / "section3_cnn" / "train_mnist_numpy.py"), "--quiet", "--epochs", "5",
                        "--seed", str(seed), "--out", str(tmp_path / str(seed))], check=True, cwd=tmp_path)
        summary = runs.read_summary(tmp_path / str(seed) / "mnist_numpy")
        accuracies.append(summary["test_acc"])
        assert summary["peak_rss_mb"] + summary["worker_peak_rss_mb"] < 1024, summary
        assert summary["val_acc"] > summary["val_acc_single_view"], summary   # the shifts pay on validation too
    assert np.mean(accuracies) >= 0.993 and min(accuracies) >= 0.992, accuracies
