"""Choosing where PyTorch runs: ``auto`` prefers CUDA, then Apple's MPS, then the CPU."""
from __future__ import annotations

import functools
import statistics
import time

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


BF16_MIN_SPEEDUP = 1.15     # bfloat16 is taken where its probe step is at least this much faster than float32


def precision_for(choice: str, device) -> str:
    """What a ``--precision`` choice means on ``device``: "fp32" when asked for; with "auto", "fp16" on CUDA,
    "bf16" on a CPU where bfloat16 autocast trains faster than float32 (``bf16_pays_on_cpu``), else "fp32"."""
    if choice == "fp32":
        return "fp32"
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and bf16_pays_on_cpu():
        return "bf16"
    return "fp32"


def bf16_pays_on_cpu() -> bool:
    """Whether this CPU trains faster in bfloat16 autocast than in float32 (both channels-last).

    The units alone do not say it (benchmarks/cifar_precision.py, the FastNet step): bfloat16 is 1.9-3.4x as
    fast as float32 on Intel Xeons with AMX and 2.2x on an AMD EPYC Zen 5 with AVX512-BF16, but 1.34x as
    slow on an Intel Xeon whose virtual machine shows AVX512-BF16 without AMX (its convolutions gain a
    little, batch norm, GELU and pooling lose more). So a CPU without bfloat16 units trains in float32, and
    on one with them a probe (``bf16_probe``, about a second, once per process) times a small training step
    in both and bfloat16 is taken when it is at least BF16_MIN_SPEEDUP x as fast."""
    from shared_utils.runs import cpu_features

    if not {"amx_bf16", "avx512_bf16"} & set(cpu_features()):
        return False
    probe = bf16_probe()
    return probe["fp32_seconds"] >= BF16_MIN_SPEEDUP * probe["bf16_seconds"]


@functools.lru_cache(maxsize=1)
def bf16_probe(batch: int = 64, repeats: int = 3) -> dict:
    """Median seconds of one training step (forward and backward) of a FastNet-like stage, conv 3x3 64->128,
    max pool, batch norm, GELU, conv 3x3 128->128, batch norm, GELU, on a batch of 16 x 16 maps in
    channels-last memory, in float32 and in bfloat16 autocast, timed alternately after a warm-up step each.
    The caller's random state is untouched."""
    with torch.random.fork_rng(devices=[]):           # the caller's random stream stays where it was
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(64, 128, 3, padding=1, bias=False), torch.nn.MaxPool2d(2), torch.nn.BatchNorm2d(128),
            torch.nn.GELU(), torch.nn.Conv2d(128, 128, 3, padding=1, bias=False), torch.nn.BatchNorm2d(128),
            torch.nn.GELU()).to(memory_format=torch.channels_last)
        x = torch.randn(batch, 64, 16, 16).to(memory_format=torch.channels_last)

    def step(bf16: bool) -> float:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = net(x).float().square().mean()
        loss.backward()
        net.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    times: dict[bool, list[float]] = {False: [], True: []}
    for bf16 in (False, True):
        step(bf16)                                   # warm-up: oneDNN builds its kernels
    for _ in range(repeats):
        for bf16 in (False, True):
            times[bf16].append(step(bf16))
    return {"fp32_seconds": statistics.median(times[False]), "bf16_seconds": statistics.median(times[True])}


def bf16_probe_seen() -> dict | None:
    """The probe's timings if this process ran it (what a run records beside the precision it chose), else None."""
    return bf16_probe() if bf16_probe.cache_info().currsize else None
