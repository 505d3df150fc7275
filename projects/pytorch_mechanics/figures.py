"""Figures only the PyTorch-mechanics scripts draw: histograms, index grids and shape diagrams."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from shared_utils import plots


def histograms(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 2) -> Path:
    """Distributions side by side. Each panel: ``{"samples": {label: values}, "title", "xlabel"}`` plus optional
    ``bins`` (default 20, shared by the panel's samples), ``ylabel`` (default "count") and ``lines``
    ({label: x}: dashed vertical markers such as a deterministic value to compare with)."""
    fig, axes, ncols = plots.panel_grid(len(panels), ncols, (5, 3.4))
    for ax, panel in zip(axes.flat, panels):
        values = [np.asarray(v, float) for v in panel["samples"].values()]
        every = np.concatenate(values + [np.asarray(list((panel.get("lines") or {}).values()), float)])
        low, high = float(every.min()), float(every.max())
        if high - low < 1e-9:
            low, high = low - 0.5e-3, high + 0.5e-3
        bins = np.linspace(low, high, int(panel.get("bins", 20)) + 1)
        for label, v in zip(panel["samples"], values):
            ax.hist(v, bins=bins, alpha=0.6, label=label)
        for i, (label, x) in enumerate((panel.get("lines") or {}).items()):
            ax.axvline(x, color=plots.PALETTE[(i + 2) % len(plots.PALETTE)], linestyle="--", label=label)
        ax.set(title=panel["title"], xlabel=panel["xlabel"], ylabel=panel.get("ylabel", "count"))
        ax.legend()
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    return plots.save(fig, out)


def index_grids(panels: Sequence[dict], out: str | os.PathLike, *, title: str, colorbar_label: str,
                ncols: int = 4) -> Path:
    """Small integer matrices side by side, each cell coloured by its value and labelled with it (e.g. the
    storage index every element of a tensor view reads). Each panel: ``{"values": 2-D, "title"}``; rows and
    columns are labelled as the tensor's dimensions 0 and 1, and one colour bar serves every panel."""
    plots.pyplot()     # the project's figure style
    grids = [np.atleast_2d(np.asarray(panel["values"])) for panel in panels]
    low, high = min(float(g.min()) for g in grids), max(float(g.max()) for g in grids)
    fig, axes, ncols = plots.panel_grid(len(panels), ncols, (2.8, 2.6))
    image = None
    for ax, panel, grid in zip(axes.flat, panels, grids):
        image = ax.imshow(grid, cmap="viridis", vmin=low, vmax=high)
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=8,
                    color="white" if value < (low + high) / 2 else "black")
        ax.set_xticks(range(grid.shape[1]))
        ax.set_yticks(range(grid.shape[0]))
        ax.set(title=panel["title"], xlabel="index in dimension 1", ylabel="index in dimension 0")
        ax.title.set_fontsize(8)
        ax.grid(False)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, label=colorbar_label, shrink=0.8)
    fig.suptitle(title)
    return plots.save(fig, out)


def shape_diagrams(cases: Sequence[Mapping], out: str | os.PathLike, *, title: str, ncols: int = 3) -> Path:
    """Broadcasting drawn: per case (``{"a", "b", "result" (None when it fails), "error"}``) the two shapes as
    rows of boxes aligned from the right, then the result. A box is a dimension with its size: plain when
    kept, orange when a size 1 stretches, dashed grey when the shorter shape is padded with a 1 on the left;
    a red box marks the clashing pair of a case that fails."""
    plots.pyplot()     # the project's figure style
    from matplotlib.patches import Patch, Rectangle

    kept, stretched, padded, clash = "#c6dbef", plots.PALETTE[3], "#eeeeee", plots.PALETTE[1]
    fig, axes, ncols = plots.panel_grid(len(cases), ncols, (3.6, 2.2))
    for ax, case in zip(axes.flat, cases):
        a, b, result = tuple(case["a"]), tuple(case["b"]), case.get("result")
        n = max(len(a), len(b), 1)
        pa, pb = (None,) * (n - len(a)) + a, (None,) * (n - len(b)) + b
        for row, (name, dims, other) in enumerate((("a", pa, pb), ("b", pb, pa))):
            for k, (size, partner) in enumerate(zip(dims, other)):
                ps, po = 1 if size is None else size, 1 if partner is None else partner
                colour = padded if size is None else kept
                if ps != po and 1 not in (ps, po):
                    colour = clash
                elif ps == 1 and po != 1:
                    colour = stretched if size is not None else padded
                ax.add_patch(Rectangle((k, 2 - row), 0.9, 0.8, facecolor=colour, edgecolor="0.3",
                                       linestyle="--" if size is None else "-"))
                ax.text(k + 0.45, 2.4 - row, "1" if size is None else str(size), ha="center", va="center")
        if result is not None:
            for k, size in enumerate((None,) * (n - len(result)) + tuple(result)):
                ax.add_patch(Rectangle((k, 0), 0.9, 0.8, facecolor="white", edgecolor="0.1", linewidth=1.5))
                ax.text(k + 0.45, 0.4, str(size), ha="center", va="center", fontweight="bold")
            verdict = "result " + ("()" if not result else str(tuple(result)))
        else:
            ax.text(n / 2, 0.4, "error: sizes clash", ha="center", va="center", color=clash, fontweight="bold")
            verdict = "fails"
        ax.set_xlim(-0.2, n + 0.1)
        ax.set_ylim(-0.2, 3.0)
        ax.set_yticks([0.4, 1.4, 2.4], ["a + b", "b", "a"])
        ax.set_xticks([k + 0.45 for k in range(n)], [str(k - n) for k in range(n)])
        ax.set(title=f"{tuple(a)} + {tuple(b)}: {verdict}", xlabel="dimension (counted from the right)")
        ax.title.set_fontsize(9)
        ax.grid(False)
    for ax in list(axes.flat)[len(cases):]:
        ax.axis("off")
    fig.legend(handles=[Patch(facecolor=kept, edgecolor="0.3", label="size kept"),
                        Patch(facecolor=stretched, edgecolor="0.3", label="size 1 stretches (stride 0)"),
                        Patch(facecolor=padded, edgecolor="0.3", linestyle="--", label="missing: counts as 1"),
                        Patch(facecolor=clash, edgecolor="0.3", label="sizes clash")],
               loc="outside lower center", ncol=4)      # constrained layout makes room below the panels
    fig.suptitle(title)
    return plots.save(fig, out)
