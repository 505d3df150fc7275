"""Seeded synthetic tasks: 2-D classification sets, a noisy non-linear tabular rule, 1-D regression."""
from __future__ import annotations

from typing import Callable

import numpy as np

from shared_utils.data.core import Split
from shared_utils.errors import UserError


def moons(n: int = 500, *, noise: float = 0.1, seed: int = 0) -> Split:
    """Two interleaving half circles (float32 (n, 2), int64 labels 0/1)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0, t1 = rng.uniform(0, np.pi, n0), rng.uniform(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], 1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)]).astype(np.int64)
    return _shuffled(x, y, rng)


def circles(n: int = 500, *, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Split:
    """A small circle (label 1) inside a large one (label 0)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(np.arange(n) < n0, 1.0, factor)
    x = np.stack([radius * np.cos(t), radius * np.sin(t)], 1) + rng.normal(0, noise, (n, 2))
    y = (np.arange(n) >= n0).astype(np.int64)
    return _shuffled(x, y, rng)


def spirals(n: int = 600, *, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Split:
    """``classes`` interleaved arms of a spiral (the CS231n toy problem)."""
    rng = np.random.default_rng(seed)
    per = n // classes
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.0, 1.0, per)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, per) + rng.normal(0, noise, per)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(per, c))
    return _shuffled(np.concatenate(xs), np.concatenate(ys).astype(np.int64), rng)


def nonlinear_tabular(n: int = 1000, *, n_features: int = 2, label_noise: float = 0.05,
                      seed: int = 0) -> Split:
    """Gaussian features, a hidden non-linear rule for the binary label, then ``label_noise`` flips.

    The rule mixes a product, a sine and a square, so no linear model can express it.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, n_features))
    score = x[:, 0] * x[:, 1 % n_features] + np.sin(2 * x[:, 0]) - 0.5 * (x[:, -1] ** 2 - 1)
    if n_features > 2:
        score = score + 0.5 * np.tanh(x[:, 2:].sum(1))
    y = (score > 0).astype(np.int64)
    flip = rng.random(n) < label_noise
    y[flip] = 1 - y[flip]
    return Split(x.astype(np.float32), y)


REGRESSION_TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sine": lambda x: np.sin(3 * x),
    "abs": np.abs,                                  # a kink at 0
    "step": lambda x: (x > 0).astype(float),        # a jump at 0
    "cubic": lambda x: x ** 3 - x,
}

REGRESSION_FORMULAS = {"sine": "sin(3x)", "abs": "|x|", "step": "step(x)", "cubic": "x³ - x"}


def regression_1d(n: int = 200, *, target: str = "sine", noise: float = 0.1,
                  low: float = -2.0, high: float = 2.0, seed: int = 0) -> Split:
    """``x`` uniform in [low, high], ``y = target(x) + noise``; float32 columns of shape (n, 1)."""
    if target not in REGRESSION_TARGETS:
        raise UserError(f"unknown target {target!r}; choose one of {', '.join(REGRESSION_TARGETS)}")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(low, high, n))
    y = REGRESSION_TARGETS[target](x) + rng.normal(0, noise, n)
    return Split(x[:, None].astype(np.float32), y[:, None].astype(np.float32))


def _shuffled(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Split:
    order = rng.permutation(len(y))
    return Split(x[order].astype(np.float32), y[order])
