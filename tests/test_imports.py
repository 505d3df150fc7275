"""NumPy code paths never import torch, and every package imports from anywhere."""
import subprocess
import sys

import pytest

from tests.conftest import REPO

NUMPY_MODULES = ["shared_utils.cli", "shared_utils.data", "shared_utils.runs", "shared_utils.plots",
                 "shared_utils.stats", "shared_utils.seed", "shared_utils.device", "shared_utils.report",
                 "section1_mlp.softmax_regression"]


@pytest.mark.parametrize("module", NUMPY_MODULES)
def test_numpy_modules_do_not_import_torch(module, tmp_path):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_script_help_runs_from_another_directory(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "section1_mlp" / "softmax_regression.py"), "--help"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "--epochs" in out.stdout and "--quick" in out.stdout
