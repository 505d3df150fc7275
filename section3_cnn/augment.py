"""Data augmentation for image batches in NumPy (no per-image Python loop)."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


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
