"""Gradient checking: analytic backward passes against centred finite differences in float64.

For a module, the scalar checked is ``L = sum(forward(x) * R)`` with a fixed random ``R``,
so ``dL/dout = R`` exercises every output. The relative error of a tensor is
``||analytic - numeric|| / max(||analytic||, ||numeric||)``: about 1e-10 for a correct
float64 backward, and of order 1 for a wrong one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from section2_optimization.layers import Module

THRESHOLD = 1e-6


@dataclass
class CheckResult:
    name: str        # "layer: tensor"
    rel_error: float
    size: int

    @property
    def passed(self) -> bool:
        return self.rel_error < THRESHOLD


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    if scale < 1e-12:  # both zero up to rounding: nothing to compare
        return 0.0
    return float(np.linalg.norm(analytic - numeric) / scale)


def numeric_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6,
                     max_entries: int | None = None, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centred differences of ``f`` w.r.t. ``array`` (perturbed in place and restored).

    Returns the flat indices checked and the numeric derivatives there; ``max_entries``
    samples a random subset of entries for big tensors.
    """
    flat = array.reshape(-1)
    indices = np.arange(flat.size)
    if max_entries is not None and flat.size > max_entries:
        indices = np.sort((rng or np.random.default_rng(0)).choice(flat.size, max_entries, replace=False))
    grads = np.empty(len(indices))
    for k, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        grads[k] = (plus - minus) / (2 * eps)
    return indices, grads


def check_module(module: Module, x: np.ndarray, *, train: bool = True, name: str = "",
                 before_forward: Callable[[], None] | None = None, eps: float = 1e-6,
                 max_entries: int | None = 200, seed: int = 0) -> list[CheckResult]:
    """Check dL/dx and dL/dparam for every parameter of ``module`` (already float64)."""
    # a stream of its own: if R were drawn from the same seed as x, R could equal x, and
    # sum(BatchNorm(x) * x) has an exactly zero input gradient, which hides nothing but proves nothing
    rng = np.random.default_rng([seed, 0x9C])
    x = np.array(x, dtype=np.float64)
    label = name or type(module).__name__

    def forward():
        if before_forward is not None:
            before_forward()  # e.g. reseed dropout so every evaluation uses the same mask
        return module.forward(x, train)

    out = forward()
    weights = rng.standard_normal(out.shape)
    grad_x = module.backward(weights.copy())
    analytic = {"input": grad_x.copy()}
    analytic.update({pname: p.grad.copy() for pname, p in module.named_parameters()})

    def loss() -> float:
        return float((forward() * weights).sum())

    results = []
    targets = [("input", x)] + [(pname, p.data) for pname, p in module.named_parameters()]
    for tname, array in targets:
        idx, numeric = numeric_gradient(loss, array, eps, max_entries, rng)
        results.append(CheckResult(f"{label}: {tname}", relative_error(analytic[tname].reshape(-1)[idx], numeric),
                                   int(array.size)))
    return results


def check_loss(loss_fn: Callable, predictions: np.ndarray, targets: np.ndarray, *, name: str = "",
               eps: float = 1e-6, **kwargs) -> CheckResult:
    """Check the gradient a loss function returns against finite differences of its value."""
    predictions = np.array(predictions, dtype=np.float64)
    _, analytic = loss_fn(predictions, targets, **kwargs)
    idx, numeric = numeric_gradient(lambda: loss_fn(predictions, targets, **kwargs)[0], predictions, eps)
    return CheckResult(name or getattr(loss_fn, "__name__", "loss"),
                       relative_error(analytic.reshape(-1)[idx], numeric), int(predictions.size))


def check_network(model: Module, loss_fn: Callable, x: np.ndarray, y: np.ndarray, *, name: str = "network",
                  train: bool = True, eps: float = 1e-6, max_entries: int | None = 100,
                  before_forward: Callable[[], None] | None = None) -> list[CheckResult]:
    """End to end: d loss / d every parameter of a whole model through its loss."""
    x = np.array(x, dtype=np.float64)

    def loss() -> float:
        if before_forward is not None:
            before_forward()
        return loss_fn(model.forward(x, train), y)[0]

    if before_forward is not None:
        before_forward()
    _, grad = loss_fn(model.forward(x, train), y)
    model.backward(grad)
    analytic = {pname: p.grad.copy() for pname, p in model.named_parameters()}
    results = []
    for pname, p in model.named_parameters():
        idx, numeric = numeric_gradient(loss, p.data, eps, max_entries)
        results.append(CheckResult(f"{name}: {pname}", relative_error(analytic[pname].reshape(-1)[idx], numeric),
                                   int(p.data.size)))
    return results
