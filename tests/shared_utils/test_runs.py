import argparse
import json
import os

import numpy as np
import pytest

from shared_utils import runs
from shared_utils.errors import UserError


def make_args(tmp_path, **extra):
    return argparse.Namespace(epochs=2, lr=0.1, out=tmp_path, seed=0, **extra)


def test_run_dir_writes_config_metrics_summary(tmp_path):
    run = runs.RunDir(__file__, "exp/a", make_args(tmp_path))
    assert run.path == tmp_path / "exp" / "a"
    config = json.loads((run.path / "config.json").read_text())
    assert config["args"]["lr"] == 0.1 and config["args"]["out"] == str(tmp_path)
    assert config["versions"]["numpy"] == np.__version__ and "started" in config
    run.log(epoch=1, train_loss=1.0, train_acc=0.5, val_loss=1.2, val_acc=0.4, lr=0.1, seconds=1.0)
    # flushed per row: readable before the run ends
    assert runs.read_metrics(run.path)["val_acc"].tolist() == [0.4]
    run.log(epoch=2, train_loss=0.5, train_acc=0.8, val_loss=0.9, val_acc=0.7, lr=0.05, seconds=1.0)
    summary = run.summary(test_acc=0.69)
    assert summary["best_val_acc"] == 0.7 and summary["best_val_acc_epoch"] == 2
    assert summary["final_train_loss"] == 0.5 and summary["test_acc"] == 0.69
    assert summary["wall_time_s"] >= 0
    assert runs.read_summary(run.path)["test_acc"] == 0.69
    with pytest.raises(ValueError, match="no column"):
        run.log(epoch=3, surprise=1.0)


def test_new_run_replaces_old_metrics_but_resume_keeps_them(tmp_path):
    run = runs.RunDir(__file__, "r", make_args(tmp_path))
    run.log(epoch=1, train_loss=1.0)
    resumed = runs.RunDir(__file__, "r", make_args(tmp_path), resume=True)
    resumed.log(epoch=2, train_loss=0.5)
    assert runs.read_metrics(resumed.path)["epoch"].tolist() == [1, 2]
    fresh = runs.RunDir(__file__, "r", make_args(tmp_path))
    assert not fresh.metrics_path.exists()


def test_default_root_is_runs_beside_the_script(tmp_path):
    assert runs.root("/some/section/script.py", "x") == runs.Path("/some/section/runs/x")
    assert runs.root("/some/section/script.py", "x", tmp_path) == tmp_path / "x"


def test_npz_round_trip_refuses_pickles_and_corruption(tmp_path):
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3)}
    path = runs.save_npz(tmp_path / "ckpt.npz", state)
    loaded = runs.load_npz(path)
    assert set(loaded) == {"w", "b"} and loaded["w"].dtype == np.float32
    np.testing.assert_array_equal(loaded["w"], state["w"])
    with pytest.raises(TypeError, match="object array"):
        runs.save_npz(tmp_path / "obj.npz", {"x": np.array([{}, 1], dtype=object)})
    # a pickled object inside an .npz is refused at load time
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="corrupt or not a NumPy"):
        runs.load_npz(tmp_path / "evil.npz")
    (tmp_path / "trunc.npz").write_bytes(path.read_bytes()[:50])
    with pytest.raises(UserError, match="corrupt"):
        runs.load_npz(tmp_path / "trunc.npz")
    with pytest.raises(UserError, match="does not exist"):
        runs.load_npz(tmp_path / "missing.npz")


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    runs.atomic_write_json(path, {"v": 1})

    def crash(src, dst):
        raise KeyboardInterrupt  # the user pressed Ctrl-C between write and rename

    monkeypatch.setattr(runs.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        runs.atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["summary.json"], "no temporary file is left behind"


def test_the_machine_is_described_by_its_blas_kernel():
    from threadpoolctl import threadpool_limits

    kernels = runs.blas_kernels()                      # NumPy is loaded: its BLAS is
    assert kernels and all(k.endswith(" threads") for k in kernels)
    with threadpool_limits(1, user_api="blas"):
        assert all(k.endswith(", 1 threads") for k in runs.blas_kernels())
    assert set(runs.cpu_features()) <= {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}


def test_blas_settings_name_the_environment_variables_that_pick_kernels(monkeypatch):
    for name in runs.BLAS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert runs.blas_settings() == {}
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("UNRELATED", "1")
    assert runs.blas_settings() == {"OPENBLAS_CORETYPE": "Haswell"}


def test_json_writes_nan_as_null(tmp_path):
    runs.atomic_write_json(tmp_path / "s.json", {"a": float("nan"), "b": np.float32(0.5), "c": np.int64(3)})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": None, "b": 0.5, "c": 3}


torch = pytest.importorskip("torch")
from shared_utils.pytorch.checkpoint import load_torch, save_torch  # noqa: E402


class NotWeights:
    """Any class: a weights-only load must refuse to rebuild it."""


def test_torch_checkpoint_round_trip_is_weights_only(tmp_path):
    state = {"layer.weight": torch.randn(3, 2), "step": 7}
    path = save_torch(tmp_path / "model.pt", state)
    loaded = load_torch(path)
    assert torch.equal(loaded["layer.weight"], state["layer.weight"]) and loaded["step"] == 7
    torch.save({"obj": NotWeights()}, tmp_path / "unsafe.pt")
    with pytest.raises(UserError, match="holds more than weights"):
        load_torch(tmp_path / "unsafe.pt")
    (tmp_path / "broken.pt").write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="corrupt"):
        load_torch(tmp_path / "broken.pt")
