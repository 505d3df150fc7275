"""Shared test helpers: where the real data is, and how to run a script like a user does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared_utils.data import resolve_data_dir

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = resolve_data_dir(None)
DATASET_MARKERS = {
    "mnist": DATA_DIR / "MNIST" / "raw",
    "cifar10": DATA_DIR / "cifar-10-batches-py",
    "polarity": DATA_DIR / "rt-polaritydata",
}


def requires(dataset: str):
    """Mark a test that needs a real dataset; it skips with the reason when the files are absent."""
    folder = DATASET_MARKERS[dataset]
    skip = pytest.mark.skipif(not folder.is_dir(),
                              reason=f"{dataset} not found in {folder}; set DL_DATA_DIR to run it")

    def decorate(test):
        return skip(pytest.mark.real_data(test))

    return decorate


def run_script(script: str | Path, *args: str, cwd: Path | None = None, timeout: float = 600,
               env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python <script> args`` in a fresh interpreter, as a user would, from ``cwd``."""
    env = dict(os.environ, MPLBACKEND="Agg", **(env_extra or {}))
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2, exactly one line on stderr containing each fragment, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
