"""Data-parallel training: two CPU processes on gloo under torchrun reach the weights one process
reaches with the same global batch and seed; only rank 0 writes the run folder; resume works."""
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from shared_utils.pytorch.checkpoint import load_torch  # noqa: E402
from tests.conftest import REPO  # noqa: E402

WORKER = REPO / "tests" / "shared_utils" / "ddp_worker.py"


def torchrun(out, *args, nproc=2):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(WORKER), str(out), *args]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    # the first lines name a failing rank's error; torchrun's own summary follows
    assert result.returncode == 0, "\n".join(l for l in result.stderr.splitlines() if "rank" in l.lower()
                                             or "error" in l.lower() or "what()" in l)[:4000]
    return result


def alone(out, *args):
    result = subprocess.run([sys.executable, str(WORKER), str(out), *args], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-2000:]


def weights(folder):
    return load_torch(folder / "last.pt")["model"]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    torchrun(tmp_path / "ddp")
    alone(tmp_path / "single")
    ddp, single = weights(tmp_path / "ddp"), weights(tmp_path / "single")
    worst = max(float((ddp[k] - single[k]).abs().max()) for k in single)
    assert worst < 1e-5, worst
    ddp_rows = (tmp_path / "ddp" / "metrics.csv").read_text().splitlines()
    single_rows = (tmp_path / "single" / "metrics.csv").read_text().splitlines()
    assert len(ddp_rows) == len(single_rows) == 4          # one writer: a header and three epochs, no duplicates
    # all-reduced metrics: the training loss over both shards equals the single process's
    for a, b in zip(ddp_rows[1:], single_rows[1:]):
        assert abs(float(a.split(",")[1]) - float(b.split(",")[1])) < 1e-4
    config = (tmp_path / "ddp" / "config.json").read_text()
    assert '"world_size": 2' in config


@pytest.mark.slow
def test_ddp_run_resumes_to_the_same_weights(tmp_path):
    torchrun(tmp_path / "straight")
    torchrun(tmp_path / "resumed", "--stop-after", "1")
    torchrun(tmp_path / "resumed", "--resume")
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
