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


def test_numpy_scripts_refuse_accelerators():
    assert device.numpy_device("auto") == "cpu"
    with pytest.raises(UserError, match="NumPy-only"):
        device.numpy_device("cuda")
