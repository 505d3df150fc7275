"""scikit-learn's 8x8 handwritten digits (ships with the package: no download)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from shared_utils.data.core import Split


def load_digits_arrays(data_dir: Path | None = None, **_):
    """scikit-learn's 8x8 digits (1,797 images, ships with the package): a fixed 80/20 split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))  # fixed: the test set never moves
    cut = int(0.8 * len(labels))
    train, test = Split(images[order[:cut]], labels[order[:cut]]), Split(images[order[cut:]], labels[order[cut:]])
    mean = float(train.x.mean() / 255.0)
    std = float(train.x.std() / 255.0)
    return train, test, [str(d) for d in range(10)], (mean,), (std,)


