"""The change-point study's figures: detection aligned on the change, delay against false alarms, delay and
accuracy by magnitude, and example streams with each detector's output."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from projects.sequence_models.evaluation import (CLASSICAL, LEARNED, RATES, cached_classical, cells_of, grid,
                                                 test_streams)
from shared_utils import plots, stats
from shared_utils.data import sequences as seq


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


KIND_TITLES = {"mean": "mean shift", "variance": "variance change", "shape": "shape change (same mean and variance)",
               "ar": "correlation change (AR(1), same marginal)"}


def detector_styles() -> dict[str, dict]:
    """One colour per detector in every figure; the classical ones dashed."""
    return {n: {"color": plots.PALETTE[i], **({"linestyle": "--"} if n in CLASSICAL else {})}
            for i, n in enumerate(LEARNED + CLASSICAL)}


def draw_figures(root: Path, results: dict, config: dict, seeds: list[int],
                 learned: dict[str, np.ndarray]) -> None:
    """The change-point study's figures from its evaluation (``results``) and the first seed's learned scores."""
    dets = results["detectors"]
    names = [n for n in LEARNED if n in dets] + list(CLASSICAL)
    dashed = detector_styles()
    nseeds = f"{len(seeds)} seed(s)"
    # detection probability aligned on t*
    offsets = np.arange(-40, 61)
    panels = []
    for j, kind in enumerate(seq.CHANGE_KINDS):
        series, bands = {}, {}
        for name in [n for n in names if dets[n]["aligned"]]:
            mean, half = stats.mean_ci([a[j] for a in dets[name]["aligned"]])
            series[name], bands[name] = (offsets, mean), half
        panels.append({"series": series, "bands": bands, "styles": dashed, "markers": False,
                       "title": KIND_TITLES[kind], "xlabel": "steps since the change (t - t*)",
                       "ylabel": "mean P(change by step)"})
    plots.line_panels(panels, root / "aligned_probability.png", title="Detection probability aligned on the change, "
                      f"all magnitudes pooled ({config['test_per_cell'] * 4} streams per kind; band: 95% CI over {nseeds})")
    # delay vs false-alarm rate
    panels = []
    for j, kind in enumerate(seq.CHANGE_KINDS):
        series, bands = {}, {}
        for name in names:
            mean, half = stats.mean_ci([c[j] for c in dets[name]["curve"]])
            series[name], bands[name] = (100 * RATES, mean), half
        panels.append({"series": series, "bands": bands, "styles": dashed, "logx": True, "title": KIND_TITLES[kind],
                       "xticks": [1, 2, 5, 10, 20, 50],
                       "xlabel": "per-sequence false-alarm rate (%, log scale)", "ylabel": "mean detection delay (steps)"})
    plots.line_panels(panels, root / "delay_vs_false_alarms.png",
                      title="Detection delay against false-alarm rate, sweeping each detector's threshold "
                            f"(undetected changes count the rest of the stream; band: 95% CI over {nseeds})")
    # delay and per-step accuracy by magnitude
    for key, fname, ylabel, scale in (("delay", "delay_by_magnitude.png", "mean delay at 5% false alarms (steps)", 1),
                                      ("accuracy", "accuracy_by_magnitude.png", "per-step accuracy on changed streams at 5% false alarms (%)",
                                       100)):
        panels = []
        for kind in seq.CHANGE_KINDS:
            idx = cells_of(kind)
            mags = [m for k, m in grid() if k == kind]
            series, bands = {}, {}
            for name in names:
                mean, half = stats.mean_ci([[scale * v[i] for i in idx] for v in dets[name][key]])
                series[name], bands[name] = (mags, mean), half
            unit = {"mean": "shift (sd)", "variance": "sd ratio - 1", "shape": "mixture share m",
                    "ar": "AR(1) coefficient"}[kind]
            panels.append({"series": series, "bands": bands, "styles": dashed, "title": KIND_TITLES[kind],
                           "xlabel": f"magnitude: {unit}", "ylabel": ylabel, "xticks": mags})
        plots.line_panels(panels, root / fname, title=f"{ylabel.split(' at ')[0].capitalize()} by magnitude of the "
                          f"change ({config['test_per_cell']} streams per point; band: 95% CI over {nseeds})")
    example_figure(root, config, seeds[0], learned)


def example_figure(root: Path, config: dict, seed: int, learned: dict[str, np.ndarray]) -> None:
    """A stream of each kind and an unchanged one, with every detector's output on it (``learned``: each learned
    detector's scores of one seed)."""
    test, cells = test_streams(config)
    classical = cached_classical(root, config)
    panels = []
    for kind in seq.CHANGE_KINDS:
        idx = cells_of(kind)
        row = int(np.nonzero(cells == idx[1])[0][0])            # the first stream at the second magnitude
        scores = {n: p[row] for n, p in learned.items()}
        scores["BOCPD"] = classical["BOCPD"][row]
        panels.append({"x": test.x[row], "scores": scores, "t_star": int(test.t_star[row]),
                       "title": f"{KIND_TITLES[kind]}, magnitude {test.magnitude[row]:g}", "ylabel": "stream value"})
    row = int(np.nonzero(cells < 0)[0][0])
    panels.append({"x": test.x[row], "scores": {**{n: p[row] for n, p in learned.items()},
                                                "BOCPD": classical["BOCPD"][row]},
                   "t_star": None, "title": "no change", "ylabel": "stream value"})
    colors = {n: style["color"] for n, style in detector_styles().items()}
    for panel in panels:
        panel["colors"] = colors
    streams_with_scores(panels, root / "examples.png", ncols=2,
                              title=f"Example test streams (grey) and each detector's output (seed {seed})")
