"""One call that makes a run repeatable: Python's, NumPy's and (if loaded) torch's RNGs."""
from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int, *, deterministic: bool = False) -> np.random.Generator:
    """Seed ``random``, NumPy's legacy global RNG and torch (only if already imported).

    Returns a fresh ``np.random.Generator(seed)``: prefer passing that around over the
    global state. ``deterministic=True`` also asks torch for deterministic kernels
    (slower; on CUDA it needs CUBLAS_WORKSPACE_CONFIG, which we set).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    torch = sys.modules.get("torch")  # never import torch for a NumPy experiment
    if torch is not None:
        torch.manual_seed(seed)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)
