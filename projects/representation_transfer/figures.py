"""Figures only the representation-transfer studies draw: codes scattered by class."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from shared_utils import plots


def scatter_by_class(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], out: str | os.PathLike, *, title: str,
                     xlabel: str, ylabel: str, legend_title: str = "class", max_points: int = 5000) -> Path:
    """One scatter panel per (name, (N, 2) points, (N,) integer labels), coloured by label (a 2-D code,
    an embedding); at most ``max_points`` points per panel, the same seeded subset in each."""
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (name, points, labels) in zip(axes[0], panels):
        points, labels = np.asarray(points, float), np.asarray(labels)
        keep = np.random.default_rng(0).permutation(len(points))[:max_points]
        for j, c in enumerate(np.unique(labels)):
            mask = labels[keep] == c
            ax.scatter(points[keep][mask, 0], points[keep][mask, 1], s=3, alpha=0.6, color=plots.PALETTE[j % len(plots.PALETTE)],
                       label=str(c))
        ax.set(title=name, xlabel=xlabel, ylabel=ylabel)
        ax.legend(title=legend_title, markerscale=3, ncols=2)
    fig.suptitle(title)
    return plots.save(fig, out)
