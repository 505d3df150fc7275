"""The change-point study's evaluation protocol, apart from any model: the scored test streams (every kind of
change at every magnitude, and unchanged streams that set each detector's alarm threshold), the classical
baselines on them (CUSUM with the true laws, with an estimated baseline, and BOCPD; detectors.py), and each
detector's delays, detection rates and per-step accuracy at a 5% per-sequence false-alarm rate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from projects.sequence_models import detectors as det
from shared_utils import runs, stats
from shared_utils.atomic import atomic_write_json
from shared_utils.data import sequences as seq
from shared_utils.errors import UserError

LEARNED = ("RNN", "LSTM", "GRU", "TCN")                # the learned detectors (change_points.py trains them)
ORACLE, KNOWN_CHANGE = "CUSUM oracle", "CUSUM known change, estimated baseline"
CLASSICAL = (ORACLE, "CUSUM estimated", "BOCPD")       # the figures' classical detectors
PER_CELL = (ORACLE, KNOWN_CHANGE)                      # thresholds set per cell: each knows the change it watches for
FA_RATE = 0.05
RATES = np.geomspace(0.01, 0.5, 12)
WARMUP = 30                        # steps the estimated CUSUM learns the baseline from (before any change)
TEST_SEED_OFFSET = 1_000_003       # test streams come from data_seed + this: never a training stream


def test_streams(config: dict) -> tuple[seq.ChangeSequences, np.ndarray]:
    """The scored streams: for each kind and magnitude of the grid, test_per_cell changed streams, then
    test_null unchanged ones; and each stream's cell index (-1 for the unchanged)."""
    parts, cells = [], []
    base = config["data_seed"] + TEST_SEED_OFFSET
    for i, (kind, magnitude) in enumerate(grid()):
        parts.append(seq.change_point_sequences(config["test_per_cell"], length=config["length"], kind=kind,
                                                magnitude=magnitude, window=tuple(config["window"]), p_change=1.0,
                                                seed=base + i))
        cells.append(np.full(config["test_per_cell"], i))
    parts.append(seq.change_point_sequences(config["test_null"], length=config["length"],
                                            window=tuple(config["window"]), p_change=0.0, seed=base + 999))
    cells.append(np.full(config["test_null"], -1))
    fields = ("x", "t_star", "kind", "magnitude", "sign", "mu0", "sigma0")
    joined = seq.ChangeSequences(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))
    return joined, np.concatenate(cells)


def grid() -> list[tuple[str, float]]:
    return [(k, m) for k in seq.CHANGE_KINDS for m in seq.MAGNITUDE_GRIDS[k]]


def classical_scores(test: seq.ChangeSequences, cells: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Scores of the classical detectors on every test stream. The per-cell CUSUMs (the oracle, and the one that
    knows the change but estimates the baseline) run once per cell (kind, magnitude): on the cell's changed
    streams, and on all unchanged streams as if watching for that cell's change (their threshold is set there),
    so each also returns one null block per cell under "<name> null"."""
    out = {"CUSUM estimated": det.estimated_cusum(test.x, warmup=WARMUP), "BOCPD": det.bocpd(test.x)}
    head = test.x[:, :WARMUP].astype(np.float64)
    baselines = {ORACLE: (test.mu0, test.sigma0, 0),
                 KNOWN_CHANGE: (head.mean(1), np.maximum(head.std(1, ddof=1), 1e-8), WARMUP)}
    for name, (mu, sd, skip) in baselines.items():
        rng = np.random.default_rng(seed)           # the same hypothesised signs on the unchanged streams
        out[name], out[f"{name} null"] = _per_cell_cusum(test, cells, rng, mu, sd, skip)
    return out


def _per_cell_cusum(test, cells, rng, mu, sd, skip: int) -> tuple[np.ndarray, np.ndarray]:
    """CUSUM on the generator's exact log-likelihood ratio for each cell's change, given the baseline (mu, sd)
    per stream; the first ``skip`` steps (a warm-up the baseline was estimated from) add nothing."""
    null = cells < 0
    changed, null_blocks = np.zeros(test.x.shape), []

    def run(rows, kind, magnitude, sign):
        llr = det.oracle_llr(test.x[rows], kind, magnitude, mu[rows], sd[rows], sign)
        llr[:, :skip] = 0.0
        return det.cusum(llr)

    for i, (kind, magnitude) in enumerate(grid()):
        rows = cells == i
        changed[rows] = run(rows, kind, magnitude, test.sign[rows])
        null_blocks.append(run(null, kind, magnitude, np.where(rng.random(null.sum()) < 0.5, -1.0, 1.0)))
    return changed, np.stack(null_blocks)               # (cells, n_null, T)


def cached_classical(root: Path, config: dict) -> dict[str, np.ndarray]:
    """The classical scores for these test streams, computed once and kept in <root>/classical.npz."""
    key = {k: config[k] for k in ("length", "window", "test_per_cell", "test_null", "data_seed")}
    key["detectors"] = sorted(CLASSICAL + PER_CELL)
    path, meta = root / "classical.npz", root / "classical.json"
    if path.exists() and meta.exists():
        try:
            if json.loads(meta.read_text()) == key:
                return runs.load_npz(path)
        except (OSError, ValueError):
            pass
    test, cells = test_streams(config)
    scores = {k: v.astype(np.float32) for k, v in classical_scores(test, cells, config["data_seed"]).items()}
    runs.save_npz(path, scores)
    atomic_write_json(meta, key)
    return scores     # as stored: a later --report-only reads these same float32 values back


def evaluate_all(root: Path, config: dict, learned: dict[str, list[np.ndarray]]) -> dict:
    """Per detector (per seed for the learned ones): delay at 5% false alarms, detection rate and per-step
    accuracy per cell, delay-vs-false-alarm curves per kind, and the mean aligned probability per kind."""
    test, cells = test_streams(config)
    null = cells < 0
    classical = cached_classical(root, config)
    detectors = dict(learned)
    for name in ("CUSUM estimated", "BOCPD"):
        detectors[name] = [classical[name]]
    if not detectors:
        raise UserError(f"no detector scores in {root}; run the study first (without --report-only)")
    targets = test.targets()
    results: dict = {"cells": [list(c) for c in grid()], "detectors": {}}
    for name, per_seed in detectors.items():
        entry = {"delay": [], "detected": [], "accuracy": [], "curve": [], "aligned": []}
        for scores in per_seed:
            h = det.null_thresholds(scores[null], [FA_RATE])[0]
            delay, detected, accuracy = [], [], []
            for i in range(len(grid())):
                rows = cells == i
                d, hit = det.delays(scores[rows], test.t_star[rows], h)
                delay.append(d.mean())
                detected.append(hit.mean())
                accuracy.append(det.step_accuracy(scores[rows], targets[rows], h))
            entry["delay"].append(delay)
            entry["detected"].append(detected)
            entry["accuracy"].append(accuracy)
            entry["curve"].append([det.delay_curve(scores[null], scores[test.kind == k], test.t_star[test.kind == k],
                                                   RATES)["delay"].tolist() for k in seq.CHANGE_KINDS])
            if name in learned or name == "BOCPD":
                entry["aligned"].append([det.aligned_mean(scores[test.kind == k], test.t_star[test.kind == k],
                                                          40, 60).tolist() for k in seq.CHANGE_KINDS])
        results["detectors"][name] = entry
    # the per-cell CUSUMs: a threshold per cell, from the unchanged streams scored for that cell's change
    for name in PER_CELL:
        entry = {"delay": [[]], "detected": [[]], "accuracy": [[]], "curve": [[]], "aligned": []}
        curves = {k: [] for k in seq.CHANGE_KINDS}
        for i, (kind, _) in enumerate(grid()):
            rows = cells == i
            null_scores, scores = classical[f"{name} null"][i], classical[name][rows]
            h = det.null_thresholds(null_scores, [FA_RATE])[0]
            d, hit = det.delays(scores, test.t_star[rows], h)
            entry["delay"][0].append(d.mean())
            entry["detected"][0].append(hit.mean())
            entry["accuracy"][0].append(det.step_accuracy(scores, targets[rows], h))
            curves[kind].append(det.delay_curve(null_scores, scores, test.t_star[rows], RATES)["delay"])
        entry["curve"][0] = [np.mean(curves[k], 0).tolist() for k in seq.CHANGE_KINDS]
        results["detectors"][name] = entry
    for e in results["detectors"].values():
        for key in ("delay", "detected", "accuracy"):
            e[key] = np.asarray(e[key], dtype=float).tolist()
    return results


def cells_of(kind: str) -> list[int]:
    """The indices of a kind's cells (one per magnitude, easiest last) in grid()."""
    return [i for i, (k, _) in enumerate(grid()) if k == kind]


def kind_mean(values: list[list[float]], kind: str) -> list[float]:
    """Per seed, the mean over a kind's magnitudes (its cells hold equally many streams)."""
    idx = cells_of(kind)
    return [float(np.mean([v[i] for i in idx])) for v in values]


def paired_difference(a: list[float], b: list[float]) -> str:
    """mean [95% CI] of a - b over paired seeds (the same seed trains every learned detector on the same streams)."""
    diff = np.asarray(a) - np.asarray(b)
    s = stats.summarize(diff)
    return f"{s.mean:+.2f}" if s.n == 1 else f"{s.mean:+.2f} [{s.mean - s.ci95:+.2f}, {s.mean + s.ci95:+.2f}]"
