"""Figures only section 2 draws: optimizer paths over a contour plot, and gradient-check errors on a log scale."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from shared_utils import plots


def contour_paths(xx: np.ndarray, yy: np.ndarray, zz: np.ndarray, paths: Mapping[str, np.ndarray],
                  out: str | os.PathLike, *, title: str, minimum: tuple[float, float] | None = None,
                  log_levels: bool = True) -> Path:
    """Optimizer trajectories (each an (steps, 2) array) over the contour plot of a 2-D function."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    levels = (np.logspace(np.log10(max(zz.min(), 1e-3) + 1e-3), np.log10(zz.max()), 25)
              if log_levels and zz.min() >= 0 else 25)
    contour = ax.contour(xx, yy, zz, levels=levels, cmap="Greys", linewidths=0.6)
    for label, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], marker=".", markersize=2, linewidth=1.2, label=label)
    if minimum is not None:
        ax.plot(*minimum, marker="*", color="gold", markersize=14, markeredgecolor="k", label="minimum")
    ax.set(title=title, xlabel="parameter x", ylabel="parameter y",
           xlim=(xx.min(), xx.max()), ylim=(yy.min(), yy.max()))
    fig.colorbar(contour, ax=ax, label="function value")
    ax.legend(loc="upper left")
    return plots.save(fig, out)


def error_bars_log(values: Mapping[str, float], out: str | os.PathLike, *, threshold: float, title: str,
                   xlabel: str, ylabel: str) -> Path:
    """One bar per named check on a log scale, red above ``threshold`` (drawn as a dashed line)."""
    plt = plots.pyplot()
    names = list(values)
    heights = [max(float(values[n]), 1e-18) for n in names]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(names) + 2), 4.2))
    passed = [h < threshold for h in heights]
    ax.bar(range(len(names)), heights, color=[plots.PALETTE[2] if ok else plots.PALETTE[1] for ok in passed])
    ax.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"pass threshold {threshold:g}")
    ax.bar([0], [0], color=plots.PALETTE[2], label="passed")
    if not all(passed):
        ax.bar([0], [0], color=plots.PALETTE[1], label="failed")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return plots.save(fig, out)
