"""Files and values a user can hand a script, crafted to break it: each ends in exit code 2 with one line
and leaves no run folder; and a run folder never mixes two runs."""
import argparse

import numpy as np
import pytest

from section3_cnn.model import architecture, build_cnn
from shared_utils import runs
from tests.conftest import assert_user_error, folder_state, requires, run_script


def cnn_checkpoint(path, **changes):
    arch = dict(pool="max", channels=(8, 16), hidden=128, kernel=3)
    state = {**build_cnn(**arch).state_dict(), **architecture(**arch)}
    state.update(changes)
    runs.save_npz(path, state)
    return path


@pytest.mark.parametrize("changes, fragment", [
    ({"meta_pool": np.array("foo")}, "meta_pool must be one of"),
    ({"meta_kernel": np.array(-3)}, "out of range"),
    ({"meta_kernel": np.array(4)}, "out of range"),
    ({"meta_channels": np.array(["8", "16"])}, "meta_channels must be two positive integers"),
    ({"meta_channels": np.array([0, 16])}, "meta_channels must be two positive integers"),
    ({"meta_hidden": np.array(10**12)}, "does not match"),     # refused before a 10^12-wide layer is allocated
    ({"meta_hidden": np.array(2.5)}, "meta_hidden must be a single integer"),
])
def test_crafted_cnn_checkpoints_are_refused_before_anything_is_built(tmp_path, changes, fragment):
    ckpt = cnn_checkpoint(tmp_path / "crafted.npz", **changes)
    result = run_script("section3_cnn/visualize_filters.py", "--ckpt", ckpt, "--out", tmp_path / "out", cwd=tmp_path)
    assert_user_error(result, "describes no valid CNN", fragment)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


@pytest.mark.parametrize("sizes, fragment", [
    (np.array([784, 0, 10]), "two or more positive integers"),
    (np.array([784, 10**12, 10]), "do not match meta_sizes"),
    (np.array(["784", "10"]), "two or more positive integers"),
])
def test_crafted_mlp_checkpoints_are_refused(tmp_path, sizes, fragment):
    from section1_mlp.mlp import MLP

    state = {**MLP([784, 16, 10]).state_dict(), "meta_sizes": sizes}
    runs.save_npz(tmp_path / "crafted.npz", state)
    result = run_script("section1_mlp/evaluate.py", "--ckpt", tmp_path / "crafted.npz", "--out", tmp_path / "out",
                        cwd=tmp_path)
    assert_user_error(result, "is not an MLP checkpoint", fragment)


def test_a_bare_tensor_or_pickled_object_is_not_a_saliency_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.zeros(3), tmp_path / "bare.pt")
    result = run_script("section4_transfer/saliency_maps.py", "--ckpt", tmp_path / "bare.pt", "--out", tmp_path / "o",
                        cwd=tmp_path)
    assert_user_error(result, "is not a small-CNN checkpoint")
    torch.save({"model": argparse.Namespace()}, tmp_path / "evil.pt")
    result = run_script("section4_transfer/saliency_maps.py", "--ckpt", tmp_path / "evil.pt", "--out", tmp_path / "o",
                        cwd=tmp_path)
    assert_user_error(result, "holds more than weights")
    assert "..." in result.stderr or len(result.stderr) < 400          # cut at a word, not mid-word


@pytest.mark.parametrize("script, args, fragment", [
    ("section1_mlp/linear_neuron.py", ["--noise", "-1"], "--noise"),
    ("section1_mlp/mlp_regression.py", ["--noise", "inf"], "--noise"),
    ("section4_transfer/resnet_vs_plain.py", ["--warmup", "nan"], "--warmup"),
    ("section4_transfer/resnet_vs_plain.py", ["--depths", "2"], "--depths"),
    ("section4_transfer/transfer_learning.py", ["--resize", "1000000"], "--resize"),
    ("section4_transfer/inspect_resnet.py", ["--size", "10000000"], "--size"),
    ("section1_mlp/universal_approximation.py", ["--widths", str(10**12)], "--widths"),
    ("section3_cnn/receptive_field.py", ["--unit", "-1", "-1"], "--unit"),
    ("section3_cnn/receptive_field.py", ["--unit", "100", "100"], "ROW and COL go from 0 to"),
    ("section3_cnn/train_mnist_numpy.py", ["--experiment", "../../escaped"], "would leave"),
    ("section3_cnn/train_mnist_numpy.py", ["--experiment", "/tmp/escaped"], "would leave"),
])
def test_out_of_range_values_are_one_line_errors(tmp_path, script, args, fragment):
    result = run_script(script, *args, "--out", tmp_path / "out", cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not (tmp_path.parent / "escaped").exists()


@requires("mnist")
def test_missing_data_leaves_no_receptive_field_folder_and_no_empty_tree(tmp_path):
    result = run_script("section3_cnn/receptive_field.py", "--data-dir", tmp_path / "typo", "--out", tmp_path / "out",
                        cwd=tmp_path, env_extra={"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                                                 "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    assert_user_error(result, "MNIST not found in")
    assert not (tmp_path / "typo").exists()                      # no empty MNIST/raw tree left behind
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_a_run_folder_never_mixes_two_runs(tmp_path, capsys):
    args = argparse.Namespace(out=tmp_path)
    first = runs.RunDir(__file__, "r", args)
    first.log(epoch=1, train_loss=1.0)
    first.summary(test_acc=0.5)
    runs.save_npz(first / "best.npz", {"w": np.zeros(2)})
    (first / ".best.npz.abc.tmp").write_bytes(b"killed mid-write")
    # a fresh run in the same folder starts clean (and says so), before it writes anything of its own
    second = runs.RunDir(__file__, "r", args)
    assert "replacing the earlier run" in capsys.readouterr().err
    assert sorted(p.name for p in second.path.iterdir()) == ["config.json"]
    second.log(epoch=1, train_loss=2.0)
    # resuming keeps the run (and still clears a killed writer's temp file)
    (second / ".last.pt.xyz.tmp").write_bytes(b"")
    third = runs.RunDir(__file__, "r", args, resume=True)
    assert sorted(p.name for p in third.path.iterdir()) == ["config.json", "metrics.csv"]
    assert oct((third / "config.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@requires("mnist")
@pytest.mark.parametrize("damage", [
    lambda p: p.write_bytes(b"\x80\x04\x95 not a checkpoint"),                              # garbage / a pickle
    lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),                    # truncated
    lambda p: runs.save_npz(p, {"w": np.zeros((3, 3))}),                                    # another model's weights
], ids=["garbage", "truncated", "other weights"])
def test_resume_never_trusts_a_finished_trial_whose_checkpoint_was_replaced(tmp_path, damage):
    """--resume over a study whose finished trial's checkpoint was damaged: exit 2 and one line naming the file
    and how to redo that trial; the folder is left byte for byte as it was."""
    flags = ("section1_mlp/softmax_regression.py", "--quick", "--limit-train", "600", "--quiet", "--out", tmp_path)
    assert run_script(*flags, cwd=tmp_path).returncode == 0
    best = tmp_path / "softmax_regression" / "softmax_regression" / "seed_0" / "best.npz"
    damage(best)
    before = folder_state(tmp_path)
    result = run_script(*flags, "--resume", cwd=tmp_path)
    assert_user_error(result, "best.npz changed after its trial finished", "run again with --resume")
    assert folder_state(tmp_path) == before


