"""NumPy code paths never import torch, and every package imports from anywhere.

The rule is the package layout: every module of shared_utils outside its ``pytorch`` subpackage is
NumPy-side. The list is discovered, never kept by hand, so a new module is checked the day it lands.
"""
import pkgutil
from pathlib import Path
import subprocess
import sys

import pytest

import shared_utils
from tests.conftest import REPO

SHARED = sorted(m.name for m in pkgutil.walk_packages(shared_utils.__path__, "shared_utils.")
                if not m.name.startswith("shared_utils.pytorch"))
# every module of the NumPy sections, scripts included
NUMPY_SECTIONS = sorted(f"{folder.name}.{path.stem}" for folder in (REPO / "section1_mlp", REPO / "section2_optimization",
                                                                   REPO / "section3_cnn")
                        for path in folder.glob("*.py") if path.stem != "__init__")
NUMPY_MODULES = SHARED + NUMPY_SECTIONS


def test_numpy_modules_do_not_import_torch(tmp_path):
    assert len(NUMPY_SECTIONS) >= 20 and "shared_utils.data.mnist_idx" in SHARED and "shared_utils.runs" in SHARED
    code = ("import importlib, sys\n"
            f"for m in {NUMPY_MODULES!r}:\n"
            "    importlib.import_module(m)\n"
            "    assert 'torch' not in sys.modules, m\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("script", [m.replace(".", "/") + ".py" for m in NUMPY_SECTIONS
                                    if m.split(".")[1] not in ("layers", "losses", "optim", "finite_differences", "trainer", "parallel",
                                                               "mlp", "model", "experiment", "augment", "figures")])
def test_every_numpy_script_answers_help(script, tmp_path):
    out = subprocess.run([sys.executable, str(REPO / script), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--seed" in out.stdout
    # only scripts that train offer training flags
    assert ("--epochs" in out.stdout) == (Path(script).stem not in INSPECTORS), script


# scripts that train nothing: they explain or inspect a checkpoint
INSPECTORS = {"evaluate", "visualize_filters", "saliency", "saliency_maps", "inspect_resnet"}


def test_script_help_runs_from_another_directory(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "section1_mlp" / "softmax_regression.py"), "--help"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "--epochs" in out.stdout and "--quick" in out.stdout


def test_the_pytorch_core_is_where_torch_enters(tmp_path):
    code = ("import sys, shared_utils.pytorch.engine\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr
