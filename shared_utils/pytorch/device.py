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


def precision_for(choice: str, device) -> str:
    """What a ``--precision`` choice means on ``device``: "fp32" when asked for; with "auto", "fp16" on CUDA,
    "bf16" on a CPU with bfloat16 units (AMX or AVX512-BF16), else "fp32"."""
    from shared_utils.runs import cpu_features

    if choice == "fp32":
        return "fp32"
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and {"amx_bf16", "avx512_bf16"} & set(cpu_features()):
        return "bf16"
    return "fp32"
