"""Where code runs. NumPy code runs on the CPU; where PyTorch runs is chosen by
``shared_utils.pytorch.device.resolve`` (``auto`` prefers CUDA, then Apple's MPS, then the CPU). This module
imports no torch: a NumPy script never loads it, and a PyTorch script has loaded it before asking."""
from __future__ import annotations

import sys

from shared_utils.errors import UserError


def numpy_device(name: str = "auto") -> str:
    """NumPy code runs on the CPU: accept ``auto``/``cpu`` and refuse an accelerator clearly."""
    if name in ("auto", "cpu"):
        return "cpu"
    raise UserError(f"--device {name}: this script is NumPy-only and runs on the CPU; use --device cpu")


def problem(name: str) -> str | None:
    """Why ``--device name`` cannot be used here, or None; every script's flags are checked with it before any
    work starts. A PyTorch script (torch already imported) asks torch whether the accelerator exists; a NumPy
    script runs on the CPU and says so."""
    if name in ("auto", "cpu"):
        return None
    if "torch" not in sys.modules:
        return f"{name}: this script is NumPy-only and runs on the CPU; use --device cpu"
    from shared_utils.pytorch.device import resolve    # torch is loaded already: this costs nothing

    try:
        resolve(name)
    except UserError as exc:
        return str(exc)
    return None
