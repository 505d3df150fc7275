"""Figures only the architecture search draws: accuracy against cost with each family's Pareto frontier."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from shared_utils import plots


def pareto_frontier(families: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]],
                    out: str | os.PathLike, *, title: str, xlabel: str, ylabel: str, logx: bool = True) -> Path:
    """Each family's points (x = cost, y = score, optional y error bars) and its Pareto frontier: the
    points no cheaper point of the same family beats."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, (name, (xs, ys, errs)) in enumerate(families.items()):
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        color = plots.PALETTE[k % len(plots.PALETTE)]
        ax.errorbar(xs, ys, yerr=None if errs is None else np.asarray(errs, float), fmt="o", color=color,
                    alpha=0.55, capsize=2, markersize=4, label=f"{name} (each model)")
        order = np.argsort(xs)
        front, best = [], -np.inf
        for i in order:
            if ys[i] > best:
                front.append(i)
                best = ys[i]
        ax.plot(xs[front], ys[front], "-", color=color, linewidth=2, label=f"{name}: Pareto frontier")
    if logx:
        ax.set_xscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return plots.save(fig, out)
