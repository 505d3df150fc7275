"""Figures only section 1 draws: the confusion matrix of a classifier."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from shared_utils import plots


def confusion_matrix(matrix: np.ndarray, classes: Sequence[str], out: str | os.PathLike, *, title: str) -> Path:
    """Rows are true classes, columns predictions; cells show counts, colour shows row share."""
    plt = plots.pyplot()
    matrix = np.asarray(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.55 * len(classes) + 2.5, 0.5 * len(classes) + 1.8))
    image = ax.imshow(share * 100, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="share of the true class (%)")
    return plots.save(fig, out)
