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
    # titles, labels, colour bars and legends (outside ones too) never overlap or leave the figure; no
    # "savefig.bbox": "tight" on top, which would lay out and draw every figure a second time
    "figure.constrained_layout.use": True,
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


def fit_titles(fig) -> None:
    """Wrap any title wider than the room it has at word boundaries, so that no title runs off the PNG
    (constrained layout moves titles, it does not wrap them). An axes title is centred on its axes, so its room
    is twice the distance from the axes' centre to the nearer edge of the figure; a suptitle has the figure's
    width. Only a figure with a long title is laid out an extra time to find its axes."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    width = fig.get_figwidth() * fig.dpi
    texts = [(fig._suptitle, None)] if fig._suptitle is not None else []
    texts += [(ax.title, ax) for ax in fig.axes if ax.get_title()]
    long = [(t, ax, t.get_window_extent(renderer).width) for t, ax in texts]
    long = [(t, ax, w) for t, ax, w in long if w > 0.6 * width / (1 if ax is None else _columns(ax))]
    if not long:
        return
    fig.draw_without_rendering()                 # constrained layout places the axes
    for text, ax, drawn in long:
        box = None if ax is None else ax.get_window_extent(renderer)
        centre = width / 2 if box is None else box.x0 + box.width / 2
        room = 0.96 * 2 * min(centre, width - centre)
        if drawn > room:
            lines = text.get_text().split("\n")
            chars = max(16, int(max(map(len, lines)) * room / drawn))
            text.set_text("\n".join(textwrap.fill(line, chars) for line in lines))


def _columns(ax) -> int:
    spec = ax.get_subplotspec()
    return spec.get_gridspec().ncols if spec is not None else 1


def save(fig, path: str | os.PathLike) -> Path:
    """Render ``fig`` to PNG in memory (titles wrapped to fit: fit_titles), write it atomically, close it."""
    plt = pyplot()
    fit_titles(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def panel_grid(n: int, ncols: int, cell: tuple[float, float], pad: tuple[float, float] = (0.0, 0.0)):
    """A figure of n panels in rows of ``ncols`` (fewer when n is smaller): each ``cell`` (width, height)
    inches plus ``pad`` for the whole figure. Returns (fig, axes as a 2-D array, ncols used)."""
    plt = pyplot()
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell[0] * ncols + pad[0], cell[1] * nrows + pad[1]),
                             squeeze=False)
    return fig, axes, ncols


def integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _is_percent(column: str) -> bool:
    return column.endswith("_acc")


def scaled(column: str, values: np.ndarray) -> np.ndarray:
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
                ax.plot(epochs, scaled(column, metrics[column]), style, marker="o" if len(epochs) < 40 else None,
                        markersize=3, label="train" if split == "train" else "validation")
        ax.set_xlabel("epoch")
        integer_epochs(ax)
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
            stack = scaled(column, np.stack([s[:n] for s in series]))
            epochs = tables[0]["epoch"][:n]
            mean = stack.mean(0)
            name = label if len(series) == 1 else f"{label} (mean ± std, {len(series)} seeds)"
            ax.plot(epochs, mean, color=color, marker="o" if n <= 30 else None, markersize=3, label=name)
            if len(series) > 1:
                std = stack.std(0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
    for ax, column in zip(axes[0], metrics):
        ax.set_xlabel("epoch")
        integer_epochs(ax)
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
    fig, axes, ncols = panel_grid(n, ncols, (6, 4) if n == 1 else (5, 3.6))
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
            integer_epochs(ax)
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
    else:
        ax.margins(y=0.12)           # room above the tallest bar for its value label
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
    fig, axes, ncols = panel_grid(n, ncols, (1.4, 1.5), pad=(1.0, 0.6))
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


def heatmap_overlay(images: np.ndarray, heats: np.ndarray, out: str | os.PathLike, *, title: str,
                    titles: Sequence[str] | None = None, ncols: int = 6,
                    heat_label: str = "saliency |d score / d pixel| (normalised)") -> Path:
    """Each image in grey with its heat map on top (alpha blended) and a shared colour bar."""
    n = len(images)
    fig, axes, ncols = panel_grid(n, ncols, (1.7, 1.8), pad=(1.0, 0.6))
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


# --------------------------------------------------------------------------- classification views


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


def decision_boundaries(panels: Sequence[dict], out: str | os.PathLike, *, title: str, ncols: int = 3) -> Path:
    """One panel per model: its predicted class over a grid, with the data points on top.

    Each panel: ``{"title", "xx", "yy", "zz" (predicted class or probability on the grid), "x", "y"}``.
    """
    n = len(panels)
    fig, axes, ncols = panel_grid(n, ncols, (3.4, 3.2))
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


