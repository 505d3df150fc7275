"""Figures only the change-point study draws: test streams with each detector's output."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from shared_utils import plots


def streams_with_scores(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 2) -> Path:
    """Example sequences under their detectors' outputs. Each panel: ``{"x": stream (T,), "scores": {label:
    (T,) values in [0, 1]}, "t_star": step or None, "title", "ylabel"}`` and optional ``"colors"`` ({label:
    colour}); the stream is drawn in grey on the
    left axis, the scores on the right one (probability), the change as a dashed vertical line."""
    n = len(panels)
    fig, axes, ncols = plots.panel_grid(n, ncols, (5.5, 3.4))
    for ax, panel in zip(axes.flat, panels):
        x = np.asarray(panel["x"], float)
        steps = np.arange(len(x))
        ax.plot(steps, x, color="#b0b0b0", linewidth=0.8, label="stream")
        ax.set(title=panel["title"], xlabel="step", ylabel=panel.get("ylabel", "value"))
        right = ax.twinx()
        right.grid(False)
        for j, (label, score) in enumerate(panel["scores"].items()):
            color = (panel.get("colors") or {}).get(label, plots.PALETTE[j % len(plots.PALETTE)])
            right.plot(steps, np.asarray(score, float), color=color, label=label)
        right.set_ylim(-0.03, 1.03)
        right.set_ylabel("P(change by step)")
        if panel.get("t_star") is not None:
            ax.axvline(panel["t_star"], color="black", linestyle="--", linewidth=1, label="true change t*")
        handles = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        right.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    return plots.save(fig, out)
