"""Choosing where PyTorch runs: ``auto`` prefers CUDA, then Apple's MPS, then the CPU."""
from __future__ import annotations

import torch

from shared_utils.errors import UserError


def resolve(name: str = "auto"):
    """Return a ``torch.device`` for ``auto|cpu|cuda|mps``; asking for an absent one is a UserError."""
    name = name.lower()
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not cuda:
            raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device auto or cpu")
        return torch.device("cuda")
    if name == "mps":
        if not mps:
            raise UserError("--device mps asked for, but Apple MPS is not available; use --device auto or cpu")
        return torch.device("mps")
    raise UserError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
