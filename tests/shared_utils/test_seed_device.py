import random
import subprocess
import sys

import numpy as np
import pytest

from shared_utils import device
from shared_utils.errors import UserError
from shared_utils.seed import seed_everything


def test_same_seed_same_streams():
    rng = seed_everything(123)
    first = (random.random(), np.random.rand(), rng.random())
    rng = seed_everything(123)
    assert (random.random(), np.random.rand(), rng.random()) == first
    seed_everything(124)
    assert random.random() != first[0]


def test_torch_is_seeded_only_if_already_imported():
    code = ("import sys; from shared_utils.seed import seed_everything; seed_everything(0); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    torch = pytest.importorskip("torch")
    seed_everything(5)
    a = torch.rand(3)
    seed_everything(5)
    assert torch.equal(a, torch.rand(3))


def test_deterministic_mode_sets_torch_flags():
    torch = pytest.importorskip("torch")
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_device_resolution():
    pytest.importorskip("torch")
    from shared_utils.pytorch import device as torch_device
    torch = pytest.importorskip("torch")
    assert torch_device.resolve("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert torch_device.resolve("auto").type == "cuda"
    elif not torch.backends.mps.is_available():
        assert torch_device.resolve("auto").type == "cpu"
        with pytest.raises(UserError, match="no CUDA GPU"):
            torch_device.resolve("cuda")


def test_the_bfloat16_probe_times_both_precisions_and_leaves_the_random_state_alone(monkeypatch):
    """precision auto takes bfloat16 on a CPU only where the probe finds it faster: bfloat16 units alone are not
    enough (an Intel Xeon VM without AMX steps 1.34x slower in it)."""
    torch = pytest.importorskip("torch")
    from shared_utils import runs
    from shared_utils.pytorch import device as torch_device

    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    timed = torch_device.bf16_probe.__wrapped__(batch=8, repeats=1)   # uncached, small: the real kernels once
    assert set(timed) == {"fp32_seconds", "bf16_seconds"} and all(0 < t < 10 for t in timed.values())
    assert torch.equal(torch.rand(2), expected)
    probe = {"fp32_seconds": 1.0, "bf16_seconds": 1.0}
    monkeypatch.setattr(torch_device, "bf16_probe", lambda: probe)
    monkeypatch.setattr(runs, "cpu_features", lambda: ["avx2", "avx512f", "avx512_bf16"])
    cpu = torch.device("cpu")
    assert torch_device.precision_for("auto", cpu) == "fp32"                  # no faster: float32
    probe["bf16_seconds"] = 1.0 / torch_device.BF16_MIN_SPEEDUP
    assert torch_device.precision_for("auto", cpu) == "bf16"
    assert torch_device.precision_for("fp32", cpu) == "fp32"
    monkeypatch.setattr(torch_device, "bf16_probe", lambda: pytest.fail("probed a CPU without bfloat16 units"))
    monkeypatch.setattr(runs, "cpu_features", lambda: ["avx2"])
    assert torch_device.precision_for("auto", cpu) == "fp32"


def test_numpy_scripts_refuse_accelerators():
    assert device.numpy_device("auto") == "cpu"
    with pytest.raises(UserError, match="NumPy-only"):
        device.numpy_device("cuda")


FAULTS = ("import json, resource, shared_utils.pytorch, torch\n"
          "faults = []\n"
          "for _ in range(10):\n"
          "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
          "    x = torch.ones(16 * 2 ** 20); y = 2 * x; y.sum(); del x, y\n"
          "    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
          "print(json.dumps(faults))")


def faults_per_step(**env) -> list[int]:
    """Minor page faults of each of ten "steps" that make and free two 64 MB tensors, in a fresh process (glibc
    and torch read their memory settings once)."""
    import json
    import os

    own = ("THP_MEM_ALLOC_ENABLE", "DL_KEEP_FREED_MEMORY", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_",
           "GLIBC_TUNABLES")
    environ = {k: v for k, v in os.environ.items() if k not in own}
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, check=True,
                         env={**environ, **env})
    return json.loads(out.stdout)


def test_the_pytorch_core_keeps_freed_cpu_memory_for_the_next_step():
    """shared_utils.pytorch has glibc keep freed memory (shared_utils.pytorch.memory): after a few steps the heap
    holds what a step needs and the later steps fault (almost) nothing in; with DL_KEEP_FREED_MEMORY=0 (and no
    huge pages) every step's two tensors are fresh mmaps, 2 x 16,384 pages of 4 kB faulted in and zeroed again."""
    pytest.importorskip("torch")
    if not sys.platform.startswith("linux"):
        pytest.skip("the setting is glibc's")
    kept = faults_per_step()
    given_back = faults_per_step(DL_KEEP_FREED_MEMORY="0", THP_MEM_ALLOC_ENABLE="0")
    # steps 6-10: every step without kept memory faults its two tensors in again; with it, glibc's heap settles
    # into reuse (a step may still fault one block in while free blocks coalesce: measured 0 or 16,385 in all)
    assert min(given_back[5:]) > 2 * 16_000 and 4 * sum(kept[5:]) < sum(given_back[5:]), (kept, given_back)


def test_keeping_freed_memory_defers_to_the_users_own_settings(monkeypatch):
    from shared_utils.pytorch import memory

    for name, value in (("DL_KEEP_FREED_MEMORY", "0"), ("MALLOC_MMAP_MAX_", "65536"),
                        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000")):
        monkeypatch.setattr(memory, "_STATE", {})            # as in a fresh process
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert memory.keep_freed_memory() is False and memory.freed_memory_kept() is False, name


@pytest.mark.slow
def test_without_kept_memory_the_pytorch_core_puts_large_cpu_tensors_on_huge_pages():
    """With DL_KEEP_FREED_MEMORY=0, shared_utils.pytorch turns on PyTorch's THP_MEM_ALLOC_ENABLE instead: each
    step's fresh 64 MB tensors fault in 2 MB pages, a few hundred, instead of 32,768 pages of 4 kB."""
    pytest.importorskip("torch")
    from pathlib import Path

    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not setting.is_file() or "[never]" in setting.read_text():
        pytest.skip("this kernel has no transparent huge pages")
    on = sum(faults_per_step(DL_KEEP_FREED_MEMORY="0")[5:])
    off = sum(faults_per_step(DL_KEEP_FREED_MEMORY="0", THP_MEM_ALLOC_ENABLE="0")[5:])
    assert off > 5 * 2 * 16_000 and on * 5 < off, (on, off)
