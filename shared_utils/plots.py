"""Every figure style in one place, so all plots look like one project's.

Headless (Agg), never ``plt.show()``; every figure gets a title, labelled axes with
units and a legend (or a colour bar where a legend means nothing, as on image grids).
Curves read their numbers from run folders (``metrics.csv``), so a finished run can
be redrawn at any time without retraining. PNGs are written atomically.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from shared_utils.atomic import atomic_write_bytes
from shared_utils.runs import read_metrics

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,  # titles, labels and colour bars never overlap
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "font.size": 9,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

LABELS = {  # column -> axis label with its unit
    "train_loss": "training loss (cross-entropy, nats)",
    "val_loss": "validation loss (cross-entropy, nats)",
    "train_acc": "training accuracy (%)",
    "val_acc": "validation accuracy (%)",
    "test_acc": "test accuracy (%)",
    "lr": "learning rate",
    "seconds": "epoch time (s)",
    "epoch": "epoch",
}


def pyplot():
    """matplotlib.pyplot on the Agg backend with the project style (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    plt.rcParams["axes.prop_cycle"] = matplotlib.cycler(color=PALETTE)
    return plt


def save(fig, path: str | os.PathLike) -> Path:
    """Render ``fig`` to PNG in memory, write it atomically, close it."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def _panel_grid(n: int, ncols: int, cell: tuple[float, float], pad: tuple[float, float] = (0.0, 0.0)):
    """A figure of n panels in rows of ``ncols`` (fewer when n is smaller): each ``cell`` (width, height)
    inches plus ``pad`` for the whole figure. Returns (fig, axes as a 2-D array, ncols used)."""
    plt = pyplot()
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell[0] * ncols + pad[0], cell[1] * nrows + pad[1]),
                             squeeze=False)
    return fig, axes, ncols


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _is_percent(column: str) -> bool:
    return column.endswith("_acc")


def _scaled(column: str, values: np.ndarray) -> np.ndarray:
    return values * 100.0 if _is_percent(column) else values


# --------------------------------------------------------------------------- curves
def learning_curves(run_path: str | os.PathLike, out: str | os.PathLike | None = None,
                    title: str | None = None, loss_label: str = "loss (cross-entropy, nats)",
                    logy: bool = False) -> Path:
    """Loss and accuracy per epoch, train vs validation, from one run's metrics.csv
    (the accuracy panel is left out when the run logged none, as in regression)."""
    run_path = Path(run_path)
    metrics = read_metrics(run_path)
    kinds = ["loss"] + (["acc"] if any(np.isfinite(metrics.get(f"{s}_acc", [np.nan])).any()
                                       for s in ("train", "val")) else [])
    plt = pyplot()
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.8), squeeze=False)
    epochs = metrics["epoch"]
    for ax, kind in zip(axes[0], kinds):
        for split, style in (("train", "-"), ("val", "--")):
            column = f"{split}_{kind}"
            if column in metrics and np.isfinite(metrics[column]).any():
                ax.plot(epochs, _scaled(column, metrics[column]), style, marker="o" if len(epochs) < 40 else None,
                        markersize=3, label="train" if split == "train" else "validation")
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel(loss_label if kind == "loss" else "accuracy (%)")
        ax.set_title("Loss" if kind == "loss" else "Accuracy")
        if kind == "loss" and logy:
            ax.set_yscale("log")
        ax.legend()
    fig.suptitle(title or f"Learning curves: {run_path.name}")
    return save(fig, out or run_path / "curves.png")


def compare_curves(runs: Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]],
                   out: str | os.PathLike, *, metrics: Sequence[str] = ("train_loss", "val_acc"),
                   title: str = "Comparison", logy: Sequence[str] = ()) -> Path:
    """Several runs overlaid, one panel per metric. A label mapping to a list of run folders
    (one per seed) is drawn as its mean with a ±1 std band."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for i, (label, paths) in enumerate(runs.items()):
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        tables = [read_metrics(p) for p in paths]
        color = PALETTE[i % len(PALETTE)]
        for ax, column in zip(axes[0], metrics):
            series = [t[column] for t in tables if column in t]
            if not series:
                continue
            n = min(len(s) for s in series)
            stack = _scaled(column, np.stack([s[:n] for s in series]))
            epochs = tables[0]["epoch"][:n]
            mean = stack.mean(0)
            name = label if len(series) == 1 else f"{label} (mean ± std, {len(series)} seeds)"
            ax.plot(epochs, mean, color=color, marker="o" if n <= 30 else None, markersize=3, label=name)
            if len(series) > 1:
                std = stack.std(0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
    for ax, column in zip(axes[0], metrics):
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel(LABELS.get(column, column))
        ax.set_title(LABELS.get(column, column).split(" (")[0].capitalize())
        if column in logy:
            ax.set_yscale("log")
        ax.legend()
    fig.suptitle(title)
    return save(fig, out)


def line_plot(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], out: str | os.PathLike, *,
              title: str, xlabel: str, ylabel: str, logx: bool = False, logy: bool = False,
              bands: Mapping[str, Sequence[float]] | None = None, markers: bool = True) -> Path:
    """Named (x, y) series on one axis; ``bands`` gives a ±half-width per point for a label."""
    panel = dict(series=series, title=title, xlabel=xlabel, ylabel=ylabel, logx=logx, logy=logy,
                 bands=bands, markers=markers)
    return line_panels([panel], out, title=None, ncols=1)


def line_panels(panels: Sequence[dict], out: str | os.PathLike, *, title: str | None, ncols: int = 2) -> Path:
    """Several line plots side by side. Each panel: ``{"series": {label: (x, y)}, "title", "xlabel",
    "ylabel"}`` plus optional ``logx``, ``logy``, ``symlogy`` (log scale that admits zeros),
    ``bands``, ``markers``, ``xticks`` and ``styles`` ({label: matplotlib line keywords}, e.g. a dashed validation
    curve in its training curve's colour; a label starting with "_" stays out of the legend)."""
    n = len(panels)
    fig, axes, ncols = _panel_grid(n, ncols, (6, 4) if n == 1 else (5, 3.6))
    for ax, panel in zip(axes.flat, panels):
        bands = panel.get("bands") or {}
        for label, (x, y) in panel["series"].items():
            x, y = np.asarray(x, float), np.asarray(y, float)
            style = {"marker": "o" if panel.get("markers", True) and len(x) <= 40 else None, "markersize": 3,
                     **(panel.get("styles") or {}).get(label, {})}
            line, = ax.plot(x, y, label=label, **style)
            if label in bands:
                half = np.asarray(bands[label], float)
                ax.fill_between(x, y - half, y + half, color=line.get_color(), alpha=0.2)
        ax.set(title=panel["title"], xlabel=panel["xlabel"], ylabel=panel["ylabel"])
        if panel["xlabel"] == "epoch":
            _integer_epochs(ax)
        if panel.get("logx"):
            ax.set_xscale("log")
        if panel.get("xticks") is not None:   # after the scale, which would reset them; plain numbers, also on log
            import matplotlib.ticker as mticker

            ax.set_xticks(panel["xticks"], [f"{t:g}" for t in panel["xticks"]])
            ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        if panel.get("logy"):
            ax.set_yscale("log")
        if panel.get("symlogy"):
            ax.set_yscale("symlog", linthresh=panel.get("linthresh", 1e-8))
        ax.legend()
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return save(fig, out)


def streams_with_scores(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 2) -> Path:
    """Example sequences under their detectors' outputs. Each panel: ``{"x": stream (T,), "scores": {label:
    (T,) values in [0, 1]}, "t_star": step or None, "title", "ylabel"}`` and optional ``"colors"`` ({label:
    colour}); the stream is drawn in grey on the
    left axis, the scores on the right one (probability), the change as a dashed vertical line."""
    n = len(panels)
    fig, axes, ncols = _panel_grid(n, ncols, (5.5, 3.4))
    for ax, panel in zip(axes.flat, panels):
        x = np.asarray(panel["x"], float)
        steps = np.arange(len(x))
        ax.plot(steps, x, color="#b0b0b0", linewidth=0.8, label="stream")
        ax.set(title=panel["title"], xlabel="step", ylabel=panel.get("ylabel", "value"))
        right = ax.twinx()
        right.grid(False)
        for j, (label, score) in enumerate(panel["scores"].items()):
            color = (panel.get("colors") or {}).get(label, PALETTE[j % len(PALETTE)])
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
    return save(fig, out)


# --------------------------------------------------------------------------- bars
def grouped_bars(values: Mapping[str, Mapping[str, float]], out: str | os.PathLike, *,
                 title: str, xlabel: str, ylabel: str,
                 errors: Mapping[str, Mapping[str, float]] | None = None, ylim: tuple[float, float] | None = None,
                 series: Sequence[str] | None = None) -> Path:
    """Bars grouped by outer key (x positions), one colour per inner key, optional error bars; ``series``
    fixes the inner keys' order (default: as they first appear), so a group missing one keeps the colours.

    ``values = {"max pool": {"val acc": 98.1, "test acc": 98.0}, "avg pool": {...}}``
    """
    plt = pyplot()
    groups = list(values)
    series = list(series) if series is not None else list(dict.fromkeys(k for g in groups for k in values[g]))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(groups) * max(1, len(series)) ** 0.5 + 2), 4))
    x = np.arange(len(groups))
    for j, name in enumerate(series):
        heights = [values[g].get(name, np.nan) for g in groups]
        err = [errors[g].get(name, 0.0) for g in groups] if errors else None
        bars = ax.bar(x + (j - (len(series) - 1) / 2) * width, heights, width, yerr=err,
                      capsize=3, label=name, color=PALETTE[j % len(PALETTE)])
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(x, groups, rotation=20 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")
    ax.set(title=title, ylabel=ylabel, xlabel=xlabel)
    if ylim:
        ax.set_ylim(*ylim)
    if len(series) > 4:        # a long legend goes beside the axes, where it cannot cover a bar
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend()
    return save(fig, out)


# --------------------------------------------------------------------------- images
def _to_hwc(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3):  # (C, H, W)
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return image


def image_grid(images: np.ndarray | Sequence[np.ndarray], out: str | os.PathLike, *, title: str,
               titles: Sequence[str] | None = None, ncols: int = 8, cmap: str = "gray",
               colorbar_label: str | None = "pixel value", symmetric: bool = False) -> Path:
    """A grid of images ((N, C, H, W), (N, H, W) or a list). Greyscale images share one colour
    scale with a labelled colour bar (the grid's legend); ``symmetric`` centres it on zero,
    which is what filters and feature maps need."""
    images = [_to_hwc(im) for im in images]
    n = len(images)
    fig, axes, ncols = _panel_grid(n, ncols, (1.4, 1.5), pad=(1.0, 0.6))
    grey = [im for im in images if im.ndim == 2]
    vmin = vmax = None
    if grey:
        lo = min(float(im.min()) for im in grey)
        hi = max(float(im.max()) for im in grey)
        if symmetric:
            bound = max(abs(lo), abs(hi)) or 1.0
            lo, hi = -bound, bound
        vmin, vmax = lo, hi
    mappable = None
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        ax.set_xticks([])        # no hidden tick labels for the layout engine to measure (2-3 s on a large grid)
        ax.set_yticks([])
        if k >= n:
            continue
        im = images[k]
        if im.ndim == 2:
            mappable = ax.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(np.clip(im, 0, 255).astype(np.uint8) if im.dtype != np.uint8 else im,
                      interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[k], fontsize=7)
    if mappable is not None and colorbar_label:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, label=colorbar_label)
    fig.suptitle(title)
    return save(fig, out)


def scatter_by_class(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], out: str | os.PathLike, *, title: str,
                     xlabel: str, ylabel: str, legend_title: str = "class", max_points: int = 5000) -> Path:
    """One scatter panel per (name, (N, 2) points, (N,) integer labels), coloured by label (a 2-D code,
    an embedding); at most ``max_points`` points per panel, the same seeded subset in each."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (name, points, labels) in zip(axes[0], panels):
        points, labels = np.asarray(points, float), np.asarray(labels)
        keep = np.random.default_rng(0).permutation(len(points))[:max_points]
        for j, c in enumerate(np.unique(labels)):
            mask = labels[keep] == c
            ax.scatter(points[keep][mask, 0], points[keep][mask, 1], s=3, alpha=0.6, color=PALETTE[j % len(PALETTE)],
                       label=str(c))
        ax.set(title=name, xlabel=xlabel, ylabel=ylabel)
        ax.legend(title=legend_title, markerscale=3, ncols=2)
    fig.suptitle(title)
    return save(fig, out)


def heatmap_overlay(images: np.ndarray, heats: np.ndarray, out: str | os.PathLike, *, title: str,
                    titles: Sequence[str] | None = None, ncols: int = 6,
                    heat_label: str = "saliency |d score / d pixel| (normalised)") -> Path:
    """Each image in grey with its heat map on top (alpha blended) and a shared colour bar."""
    n = len(images)
    fig, axes, ncols = _panel_grid(n, ncols, (1.7, 1.8), pad=(1.0, 0.6))
    mappable = None
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        ax.set_xticks([])        # no hidden tick labels for the layout engine to measure (2-3 s on a large grid)
        ax.set_yticks([])
        if k >= n:
            continue
        image = _to_hwc(images[k])
        heat = np.asarray(heats[k], float)
        heat = heat / (heat.max() or 1.0)
        ax.imshow(image if image.ndim == 3 else image, cmap=None if image.ndim == 3 else "gray",
                  interpolation="nearest")
        mappable = ax.imshow(heat, cmap="inferno", alpha=0.55, vmin=0, vmax=1, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[k], fontsize=7)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, label=heat_label)
    fig.suptitle(title)
    return save(fig, out)


def attention_maps(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 2,
                   max_labels: int = 40) -> Path:
    """Attention weights, one panel per dict: ``weights`` (queries, keys) rows summing to 1, ``queries`` and
    ``keys`` (tick labels: tokens), ``title``. Shared colour scale 0-1 so panels compare; tick labels are
    thinned past ``max_labels`` positions."""
    side = max(max(len(p["keys"]), len(p["queries"])) for p in panels)
    cell = min(6.0, max(3.2, 0.16 * side))
    fig, axes, ncols = _panel_grid(len(panels), ncols, (cell + 0.6, cell), pad=(1.0, 0.6))
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
    return save(fig, out)


# --------------------------------------------------------------------------- classification views
def confusion_matrix(matrix: np.ndarray, classes: Sequence[str], out: str | os.PathLike, *, title: str) -> Path:
    """Rows are true classes, columns predictions; cells show counts, colour shows row share."""
    plt = pyplot()
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
    return save(fig, out)


def annotated_heatmap(values: np.ndarray, rows: Sequence[str], cols: Sequence[str], out: str | os.PathLike, *,
                      title: str, xlabel: str, ylabel: str, colorbar_label: str,
                      annotations: Sequence[Sequence[str]] | None = None) -> Path:
    """A grid of values (NaN = missing, drawn blank) with each cell's text, e.g. 'mean ± CI'."""
    plt = pyplot()
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 * len(cols) + 2.5, 0.7 * len(rows) + 1.8))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto")
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(len(rows)):
        for j in range(len(cols)):
            text = annotations[i][j] if annotations else ("" if not np.isfinite(values[i, j]) else f"{values[i, j]:.2f}")
            ax.text(j, i, text or "missing", ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(values[i, j]) and values[i, j] < middle else "black")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(False)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    return save(fig, out)


def histograms(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 2) -> Path:
    """Distributions side by side. Each panel: ``{"samples": {label: values}, "title", "xlabel"}`` plus optional
    ``bins`` (default 20, shared by the panel's samples), ``ylabel`` (default "count") and ``lines``
    ({label: x}: dashed vertical markers such as a deterministic value to compare with)."""
    fig, axes, ncols = _panel_grid(len(panels), ncols, (5, 3.4))
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
            ax.axvline(x, color=PALETTE[(i + 2) % len(PALETTE)], linestyle="--", label=label)
        ax.set(title=panel["title"], xlabel=panel["xlabel"], ylabel=panel.get("ylabel", "count"))
        ax.legend()
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    return save(fig, out)


def index_grids(panels: Sequence[dict], out: str | os.PathLike, *, title: str, colorbar_label: str,
                ncols: int = 4) -> Path:
    """Small integer matrices side by side, each cell coloured by its value and labelled with it (e.g. the
    storage index every element of a tensor view reads). Each panel: ``{"values": 2-D, "title"}``; rows and
    columns are labelled as the tensor's dimensions 0 and 1, and one colour bar serves every panel."""
    plt = pyplot()
    grids = [np.atleast_2d(np.asarray(panel["values"])) for panel in panels]
    low, high = min(float(g.min()) for g in grids), max(float(g.max()) for g in grids)
    fig, axes, ncols = _panel_grid(len(panels), ncols, (2.8, 2.6))
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
    return save(fig, out)


def shape_diagrams(cases: Sequence[Mapping], out: str | os.PathLike, *, title: str, ncols: int = 3) -> Path:
    """Broadcasting drawn: per case (``{"a", "b", "result" (None when it fails), "error"}``) the two shapes as
    rows of boxes aligned from the right, then the result. A box is a dimension with its size: plain when
    kept, orange when a size 1 stretches, dashed grey when the shorter shape is padded with a 1 on the left;
    a red box marks the clashing pair of a case that fails."""
    plt = pyplot()
    from matplotlib.patches import Patch, Rectangle

    kept, stretched, padded, clash = "#c6dbef", PALETTE[3], "#eeeeee", PALETTE[1]
    fig, axes, ncols = _panel_grid(len(cases), ncols, (3.6, 2.2))
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
               loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(title)
    return save(fig, out)


def pareto_frontier(families: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]],
                    out: str | os.PathLike, *, title: str, xlabel: str, ylabel: str, logx: bool = True) -> Path:
    """Each family's points (x = cost, y = score, optional y error bars) and its Pareto frontier: the
    points no cheaper point of the same family beats."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, (name, (xs, ys, errs)) in enumerate(families.items()):
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        color = PALETTE[k % len(PALETTE)]
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
    return save(fig, out)


def decision_boundaries(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 3) -> Path:
    """One panel per model: its predicted class over a grid, with the data points on top.

    Each panel: ``{"title", "xx", "yy", "zz" (predicted class or probability on the grid), "x", "y"}``.
    """
    n = len(panels)
    fig, axes, ncols = _panel_grid(n, ncols, (3.4, 3.2))
    for ax, panel in zip(axes.flat, panels):
        ax.contourf(panel["xx"], panel["yy"], panel["zz"], alpha=0.3, cmap="coolwarm")
        classes = np.unique(panel["y"])
        for c in classes:
            pts = panel["x"][panel["y"] == c]
            ax.scatter(pts[:, 0], pts[:, 1], s=6, label=f"class {c}",
                       color=PALETTE[int(c) % len(PALETTE)], edgecolors="none")
        ax.set(title=panel["title"], xlabel="feature x1", ylabel="feature x2")
        ax.legend(loc="lower right", markerscale=2)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    return save(fig, out)


def contour_paths(xx: np.ndarray, yy: np.ndarray, zz: np.ndarray, paths: Mapping[str, np.ndarray],
                  out: str | os.PathLike, *, title: str, minimum: tuple[float, float] | None = None,
                  log_levels: bool = True) -> Path:
    """Optimizer trajectories (each an (steps, 2) array) over the contour plot of a 2-D function."""
    plt = pyplot()
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
    return save(fig, out)


def regression_fits(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 3,
                    residuals: bool = False) -> Path:
    """1-D fits: each panel ``{"title", "x", "y" (data), "grid", "truth", "fits": {label: values}}``.

    With ``residuals`` a second row shows data minus the first fit, which is where a
    systematic misfit shows up as structure rather than noise.
    """
    plt = pyplot()
    n = len(panels)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols)) * (2 if residuals else 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for k, panel in enumerate(panels):
        row, col = divmod(k, ncols)
        ax = axes[row * (2 if residuals else 1), col]
        ax.scatter(panel["x"], panel["y"], s=5, color="0.6", label="data", zorder=1)
        ax.plot(panel["grid"], panel["truth"], "k--", linewidth=1.2, label="true function", zorder=2)
        for label, values in panel["fits"].items():
            ax.plot(panel["grid"], values, label=label, zorder=3)
        ax.set(title=panel["title"], xlabel="input x", ylabel="output y")
        ax.legend()
        if residuals:
            rax = axes[row * 2 + 1, col]
            first = next(iter(panel["fits"]))
            fitted = np.interp(np.ravel(panel["x"]), np.ravel(panel["grid"]), np.ravel(panel["fits"][first]))
            rax.scatter(panel["x"], np.ravel(panel["y"]) - fitted, s=5, label=f"data - {first}")
            rax.axhline(0, color="k", linewidth=0.8)
            rax.set(title=f"Residuals: {panel['title']}", xlabel="input x", ylabel="residual (y units)")
            rax.legend()
    for ax in axes.flat[n * (2 if residuals else 1):]:
        ax.axis("off")
    fig.suptitle(title)
    return save(fig, out)


def error_bars_log(values: Mapping[str, float], out: str | os.PathLike, *, threshold: float, title: str,
                   xlabel: str, ylabel: str) -> Path:
    """One bar per named check on a log scale, red above ``threshold`` (drawn as a dashed line)."""
    plt = pyplot()
    names = list(values)
    heights = [max(float(values[n]), 1e-18) for n in names]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(names) + 2), 4.2))
    passed = [h < threshold for h in heights]
    ax.bar(range(len(names)), heights, color=[PALETTE[2] if ok else PALETTE[1] for ok in passed])
    ax.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"pass threshold {threshold:g}")
    ax.bar([0], [0], color=PALETTE[2], label="passed")
    if not all(passed):
        ax.bar([0], [0], color=PALETTE[1], label="failed")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return save(fig, out)


def training_dashboard(run_path: str | os.PathLike, out: str | os.PathLike | None = None,
                       title: str | None = None) -> Path:
    """Four panels from metrics.csv: loss, accuracy, learning rate, throughput (images per second)."""
    run_path = Path(run_path)
    m = read_metrics(run_path)
    e = m["epoch"]
    both = lambda key: {name: (e, _scaled(f"{split}_{key}", m[f"{split}_{key}"]))  # noqa: E731
                        for split, name in (("train", "train"), ("val", "validation")) if f"{split}_{key}" in m}
    panels = [
        {"series": both("loss"), "title": "Loss", "xlabel": "epoch", "ylabel": "cross-entropy (nats)"},
        {"series": both("acc"), "title": "Accuracy", "xlabel": "epoch", "ylabel": "accuracy (%)"},
        {"series": {"learning rate at epoch start": (e, m["lr"])}, "title": "Learning rate", "xlabel": "epoch",
         "ylabel": "learning rate"},
        {"series": {"training images per second": (e, m.get("images_per_s", np.full(len(e), np.nan)))},
         "title": "Throughput", "xlabel": "epoch", "ylabel": "images per second"},
    ]
    return line_panels(panels, out or run_path / "dashboard.png", title=title or f"Training: {run_path.name}")
