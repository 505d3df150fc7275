"""Figures only section 4 draws: the four-panel training dashboard of a run."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shared_utils import plots
from shared_utils.runs import read_metrics


def training_dashboard(run_path: str | os.PathLike, out: str | os.PathLike | None = None,
                       title: str | None = None) -> Path:
    """Four panels from metrics.csv: loss, accuracy, learning rate, throughput (images per second)."""
    run_path = Path(run_path)
    m = read_metrics(run_path)
    e = m["epoch"]
    both = lambda key: {name: (e, plots.scaled(f"{split}_{key}", m[f"{split}_{key}"]))  # noqa: E731
                        for split, name in (("train", "train"), ("val", "validation")) if f"{split}_{key}" in m}
    panels = [
        {"series": both("loss"), "title": "Loss", "xlabel": "epoch", "ylabel": "cross-entropy (nats)"},
        {"series": both("acc"), "title": "Accuracy", "xlabel": "epoch", "ylabel": "accuracy (%)"},
        {"series": {"learning rate at epoch start": (e, m["lr"])}, "title": "Learning rate", "xlabel": "epoch",
         "ylabel": "learning rate"},
        {"series": {"training images per second": (e, m.get("images_per_s", np.full(len(e), np.nan)))},
         "title": "Throughput", "xlabel": "epoch", "ylabel": "images per second"},
    ]
    return plots.line_panels(panels, out or run_path / "dashboard.png", title=title or f"Training: {run_path.name}")
