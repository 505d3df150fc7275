"""Data augmentation for image batches in NumPy (no per-image Python loop), in training and at test time."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from section2_optimization.losses import log_softmax


def random_shift(x: np.ndarray, rng: np.random.Generator, max_shift: int = 1, fill: float | None = None) -> np.ndarray:
    """Translate each image of an (N, C, H, W) batch by its own random offset in
    [-max_shift, max_shift] pixels on each axis. Uncovered pixels get ``fill``, by default the
    batch minimum: normalised MNIST's background value, so the background stays uniform."""
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    m = max_shift
    padded = np.full((n, c, h + 2 * m, w + 2 * m), x.min() if fill is None else fill, dtype=x.dtype)
    padded[:, :, m:m + h, m:m + w] = x
    views = sliding_window_view(padded, (h, w), axis=(2, 3))      # (N, C, 2m+1, 2m+1, H, W), no copy
    dy, dx = rng.integers(0, 2 * m + 1, size=(2, n))
    return views[np.arange(n), :, dy, dx]                          # (N, C, H, W): one gather


def shift(x: np.ndarray, dy: int, dx: int, fill: float | None = None) -> np.ndarray:
    """Every image of an (N, C, H, W) batch translated by ``dy`` pixels down and ``dx`` right (negative: up,
    left); uncovered pixels get ``fill``, by default the batch minimum (the background, as in random_shift)."""
    n, c, h, w = x.shape
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"a shift of ({dy}, {dx}) pixels moves a {h}x{w} image out of its frame")
    out = np.full_like(x, x.min() if fill is None else fill)
    out[:, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


# test-time augmentation: the image itself and its four one-pixel neighbours, the shifts training draws from
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def view_probabilities(logits_of, x: np.ndarray, shifts=TTA_SHIFTS) -> np.ndarray:
    """(len(shifts), N, K): softmax(logits_of(shift_k(x))) for each shift k; their mean over k is the
    test-time-augmented prediction. ``logits_of`` maps an (N, C, H, W) array to (N, K) logits (a model's predict)."""
    fill = x.min()
    return np.stack([np.exp(log_softmax(logits_of(shift(x, dy, dx, fill) if (dy, dx) != (0, 0) else x)))
                     for dy, dx in shifts])
