"""Figures only the attention studies draw: attention weights as query-by-key maps."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from shared_utils import plots


def attention_maps(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 2,
                   max_labels: int = 40) -> Path:
    """Attention weights, one panel per dict: ``weights`` (queries, keys) rows summing to 1, ``queries`` and
    ``keys`` (tick labels: tokens), ``title``. Shared colour scale 0-1 so panels compare; tick labels are
    thinned past ``max_labels`` positions."""
    side = max(max(len(p["keys"]), len(p["queries"])) for p in panels)
    cell = min(6.0, max(3.2, 0.16 * side))
    fig, axes, ncols = plots.panel_grid(len(panels), ncols, (cell + 0.6, cell), pad=(1.0, 0.6))
    mappable = None
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.axis("off")
            continue
        p = panels[k]
        w = np.asarray(p["weights"], float)
        mappable = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        for axis, labels in ((ax.set_xticks, p["keys"]), (ax.set_yticks, p["queries"])):
            step = max(1, int(np.ceil(len(labels) / max_labels)))
            idx = list(range(0, len(labels), step))
            axis(idx, [str(labels[i]) for i in idx])
        ax.tick_params(axis="x", labelrotation=90, labelsize=6)
        ax.tick_params(axis="y", labelsize=6)
        ax.set(title=p.get("title", ""), xlabel=p.get("xlabel", "key position (token attended to)"),
               ylabel=p.get("ylabel", "query position (token attending)"))
        ax.grid(False)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, label="attention weight (softmax, rows sum to 1)")
    fig.suptitle(title)
    return plots.save(fig, out)
