"""NumPy code paths never import torch, and every package imports from anywhere."""
import subprocess
import sys

import pytest

from tests.conftest import REPO

SHARED = ["shared_utils.cli", "shared_utils.data", "shared_utils.runs", "shared_utils.plots",
          "shared_utils.stats", "shared_utils.seed", "shared_utils.device", "shared_utils.report"]
# every module of the NumPy sections, scripts included
NUMPY_SECTIONS = sorted(f"{folder.name}.{path.stem}" for folder in (REPO / "section1_mlp", REPO / "section2_optimization",
                                                                   REPO / "section3_cnn")
                        for path in folder.glob("*.py") if path.stem != "__init__")
NUMPY_MODULES = SHARED + NUMPY_SECTIONS


def test_numpy_modules_do_not_import_torch(tmp_path):
    assert len(NUMPY_SECTIONS) >= 20
    code = ("import importlib, sys\n"
            f"for m in {NUMPY_MODULES!r}:\n"
            "    importlib.import_module(m)\n"
            "    assert 'torch' not in sys.modules, m\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("script", [m.replace(".", "/") + ".py" for m in NUMPY_SECTIONS
                                    if m.split(".")[1] not in ("layers", "losses", "optim", "gradcheck", "trainer",
                                                               "mlp", "model", "experiment", "augment")])
def test_every_numpy_script_answers_help(script, tmp_path):
    out = subprocess.run([sys.executable, str(REPO / script), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--epochs" in out.stdout and "--seed" in out.stdout


def test_script_help_runs_from_another_directory(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "section1_mlp" / "softmax_regression.py"), "--help"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "--epochs" in out.stdout and "--quick" in out.stdout
