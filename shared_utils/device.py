"""NumPy code runs on the CPU; where PyTorch runs is chosen by ``shared_utils.pytorch.device.resolve``."""
from __future__ import annotations

from shared_utils.errors import UserError


def numpy_device(name: str = "auto") -> str:
    """NumPy code runs on the CPU: accept ``auto``/``cpu`` and refuse an accelerator clearly."""
    if name in ("auto", "cpu"):
        return "cpu"
    raise UserError(f"--device {name}: this script is NumPy-only and runs on the CPU; use --device cpu")
