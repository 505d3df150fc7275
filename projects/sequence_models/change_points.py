"""How fast does each kind of sequence model notice that a stream has changed, and which changes can it see?

Part A of projects/sequence_models (the README there has the findings). Streams of --length steps (default
200) change at an unknown step t*, uniform over --window (default 50-150), in one of four ways: the mean, the
variance, the shape (same mean and variance) or the lag-1 correlation (shared_utils.data.sequences); half the
training streams never change. Four online detectors with the same number of weights (--budget) read a stream
left to right and emit at every step the probability that a change has happened by then:

  RNN, LSTM, GRU   one recurrent layer and a linear read-out per step
  TCN              a causal dilated 1-D CNN (kernel 3, dilations 1..64: a 255-step receptive field)

They train on mixed streams (all four kinds, magnitudes drawn from each kind's range; --train-size new streams
every epoch) with a per-step binary cross-entropy, once per seed; each seed draws its own training streams. Every detector is then scored on the
same test streams: --test-per-cell changed streams for each kind at each of four magnitudes, and --test-null
streams without a change that set each detector's alarm threshold for a 5% per-sequence false-alarm rate.
The classical baselines run on the same streams (projects/sequence_models/detectors.py): CUSUM with the true
pre- and post-change laws (the oracle), a Gaussian-mean CUSUM with the baseline estimated from the first 30
steps, and Bayesian online change-point detection. Outputs in projects/sequence_models/runs/change_points/.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from projects.sequence_models import detectors as det
from projects.sequence_models import figures
from projects.sequence_models.evaluation import (CLASSICAL, FA_RATE, KNOWN_CHANGE, LEARNED, ORACLE, WARMUP,
                                                 evaluate_all, grid, kind_mean, paired_difference, test_streams)
from projects.sequence_models.taggers import sequence_tagger
from shared_utils import cli, runs, stats
from shared_utils.atomic import atomic_write_json
from shared_utils.data import sequences as seq
from shared_utils.errors import UserError
from shared_utils.pytorch.engine import TrainConfig, binary, evaluate, fit, load_best
from shared_utils.pytorch.models import count_parameters, width_for_budget
from shared_utils.pytorch.pipeline import FreshLoader, TensorLoader
from shared_utils.study import Study, StudyResult, start

# ---- the recipe of every learned detector; --epochs, --batch-size, --lr, --budget ... override it
HP = {"epochs": 20, "batch_size": 128, "lr": 3e-3, "optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine",
      "grad_clip": 1.0, "best_metric": "val_loss", "best_mode": "min", "model": "lstm", "budget": 10_000,
      "length": 200, "window": [50, 150], "train_size": 16_000, "val_size": 2000, "test_per_cell": 250,
      "test_null": 2000}
CONDITIONS = {name: {"model": name.lower()} for name in LEARNED}     # RNN, LSTM, GRU, TCN


# --------------------------------------------------------------------------- data


def build(config: dict) -> torch.nn.Module:
    width = width_for_budget(lambda w: sequence_tagger(config["model"], w), config["budget"], low=2)
    return sequence_tagger(config["model"], width)


# --------------------------------------------------------------------------- one trial: train, score the test streams
def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    window = tuple(config["window"])
    val = seq.change_point_sequences(config["val_size"], length=config["length"], window=window,
                                     seed=config["seed"] + 500_000)
    model = build(config)
    def draw(n, seed):
        streams = seq.change_point_sequences(n, length=config["length"], window=window, seed=seed)
        return streams.x, streams.targets()

    # new streams every epoch (train_size of them): the detector cannot memorise, only learn the rule
    loader = FreshLoader(draw, config["train_size"], batch_size=config["batch_size"], seed=config["seed"],
                         device=device)
    val_loader = TensorLoader(val.x, val.targets(), batch_size=500, shuffle=False, device=device)
    cfg = TrainConfig.from_config(config)
    fit(model, loader, val_loader, cfg, device=device, run=run, quiet=config["quiet"], desc=config["condition"],
        loss_fn=binary())
    load_best(model, run, device)
    test, _ = test_streams(config)
    scores = predict(model, test.x, device)
    runs.save_npz(run / "scores.npz", {"p": scores.astype(np.float32)})
    val_scores = evaluate(model, val_loader, device, binary())
    h = det.null_thresholds(scores[test.t_star < 0], [FA_RATE])[0]
    per_kind = {}
    for kind in seq.CHANGE_KINDS:
        rows = test.kind == kind
        delay, hit = det.delays(scores[rows], test.t_star[rows], h)
        per_kind[f"delay_{kind}"] = float(delay.mean())
        per_kind[f"detected_{kind}"] = float(hit.mean())
    return run.summary(parameters=count_parameters(model), val_step_acc=val_scores["acc"],
                       val_bce=val_scores["loss"], threshold_5pct=float(h), **per_kind)


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, device, batch: int = 1000) -> np.ndarray:
    model.eval()
    out = [torch.sigmoid(model(torch.from_numpy(x[i:i + batch]).to(device))).cpu().numpy()
           for i in range(0, len(x), batch)]
    return np.concatenate(out)


# --------------------------------------------------------------------------- classical baselines


# --------------------------------------------------------------------------- the evidence


def learned_scores(root: Path, seeds: list[int]) -> dict[str, list[np.ndarray]]:
    """{detector: [(n, T) test-stream probabilities of each finished seed among ``seeds``]}: the learned
    detectors' scores.npz, read back through the study's folder."""
    if not (root / "detectors" / "manifest.json").is_file():
        return {}
    found = {name: [runs.load_npz(p / "scores.npz")["p"] for p in paths if (p / "scores.npz").exists()]
             for name, paths in StudyResult.load(root / "detectors").run_paths(seeds).items()}
    return {name: found[name] for name in LEARNED if found.get(name)}


def report(root: Path, config: dict, seeds: list[int]) -> dict:
    results = evaluate_all(root, config, learned_scores(root, seeds))
    atomic_write_json(root / "results.json", results)
    dets = results["detectors"]
    names = [n for n in LEARNED if n in dets] + list(CLASSICAL) + [KNOWN_CHANGE]
    expected = len(seeds)
    # table 1: mean delay at 5% false alarms per kind, and the detection rate
    rows = []
    for name in names:
        e = dets[name]
        n_exp = expected if name in LEARNED else None
        rows.append([name] + [stats.ci_cell(kind_mean(e["delay"], k), n_exp) + " (" +
                              stats.ci_cell([100 * v for v in kind_mean(e["detected"], k)], n_exp, digits=0) + "%)"
                              for k in seq.CHANGE_KINDS])
    stats.write_table(["detector"] + [f"{k}: delay (detected)" for k in seq.CHANGE_KINDS], rows, root / "delays",
                      caption=f"Mean detection delay (steps) at a {FA_RATE:.0%} per-sequence false-alarm rate, "
                              f"averaged over each kind's magnitudes {dict(seq.MAGNITUDE_GRIDS)}, and the share of "
                              f"changes detected before the stream ends; learned: mean ± 95% CI over seeds {seeds}.")
    # table 2: per magnitude
    rows = []
    for name in names:
        e = dets[name]
        rows.append([name] + [stats.ci_cell([v[i] for v in e["delay"]]) for i in range(len(grid()))])
    stats.write_table(["detector"] + [f"{k} {m:g}" for k, m in grid()], rows, root / "delays_by_magnitude",
                      caption=f"Mean delay (steps) at {FA_RATE:.0%} false alarms per kind and magnitude")
    # the goals
    best = min((n for n in LEARNED if n in dets), key=lambda n: np.mean(kind_mean(dets[n]["delay"], "mean")))
    oracle_mean = kind_mean(dets[ORACLE]["delay"], "mean")[0]
    ratios = [v / oracle_mean for v in kind_mean(dets[best]["delay"], "mean")]
    known = kind_mean(dets[KNOWN_CHANGE]["delay"], "mean")[0]
    shape_best = min((n for n in LEARNED if n in dets), key=lambda n: np.mean(kind_mean(dets[n]["delay"], "shape")))
    findings = {
        "mean_best_learned": best, "mean_ratio_to_oracle": stats.ci_cell(ratios, digits=3),
        "mean_ratio_values": ratios,
        "mean_ratio_to_known_change_estimated_baseline": stats.ci_cell([v / known for v in
                                                                        kind_mean(dets[best]["delay"], "mean")], digits=3),
        "shape_best_learned": shape_best,
        "shape_delay": {n: stats.ci_cell(kind_mean(dets[n]["delay"], "shape")) for n in names},
        "tcn_minus_recurrent": {f"TCN - {r}": {k: paired_difference(kind_mean(dets["TCN"]["delay"], k),
                                                                    kind_mean(dets[r]["delay"], k))
                                               for k in seq.CHANGE_KINDS}
                                for r in ("RNN", "LSTM", "GRU") if r in dets and "TCN" in dets},
    }
    atomic_write_json(root / "findings.json", findings)
    if findings["tcn_minus_recurrent"]:
        stats.write_table(["comparison"] + list(seq.CHANGE_KINDS),
                          [[c] + [v[k] for k in seq.CHANGE_KINDS] for c, v in findings["tcn_minus_recurrent"].items()],
                          root / "tcn_vs_recurrent",
                          caption="TCN delay minus each recurrent net's (steps, at 5% false alarms; negative = the CNN "
                                  "detects sooner): mean [95% CI] of the paired per-seed differences")
    figures.draw_figures(root, results, config, seeds,
                         {name: per[0] for name, per in learned_scores(root, [seeds[0]]).items()})
    return findings


# --------------------------------------------------------------------------- command line
def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 1, "train_size": 512, "val_size": 128, "test_per_cell": 16, "test_null": 64,
                          "length": 80, "window": [35, 60], "budget": 600})
    p.add_argument("--length", type=int, default=HP["length"],
                   help="steps per stream (T)")
    p.add_argument("--window", type=int, nargs=2, default=HP["window"], metavar=("FIRST", "LAST"),
                   help="t* is drawn uniformly from FIRST..LAST (inclusive)")
    p.add_argument("--budget", type=cli.bounded_int(100, 10_000_000, " parameters"), default=HP["budget"],
                   help="weights per learned detector (each architecture's width is set to match)")
    p.add_argument("--train-size", type=cli.bounded_int(16, 10_000_000, " streams"), default=HP["train_size"])
    p.add_argument("--val-size", type=cli.bounded_int(16, 1_000_000, " streams"), default=HP["val_size"])
    p.add_argument("--test-per-cell", type=cli.bounded_int(4, 1_000_000, " streams"), default=HP["test_per_cell"],
                   help="changed test streams per kind and magnitude")
    p.add_argument("--test-null", type=cli.bounded_int(20, 1_000_000, " streams"), default=HP["test_null"],
                   help="unchanged test streams (they set the 5%% false-alarm thresholds)")
    p.add_argument("--models", nargs="+", choices=LEARNED, default=list(LEARNED))
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    seq.check_change_settings(args.length, tuple(args.window))
    if args.length > 100_000:
        raise UserError(f"--length {args.length} is more than 100,000 steps; choose a shorter stream")
    if args.window[0] <= WARMUP:
        raise UserError(f"--window starts at {args.window[0]}, inside the estimated CUSUM's {WARMUP}-step warm-up; "
                        f"start it after step {WARMUP}")
    root = runs.root(__file__, out=args.out) / "change_points"
    base = {**cli.hyperparameters(HP, args), **cli.data_settings(args), "window": list(args.window)}
    if args.report_only and not (root / "detectors").is_dir():
        raise UserError(f"no runs in {root}; run the study first (without --report-only)")
    if not args.report_only:
        study = Study("detectors", trial, {m: CONDITIONS[m] for m in args.models}, args.seeds, root, base=base,
                      resume=args.resume, cost=lambda c: {"gru": 1.6, "tcn": 1.2}.get(c["model"], 1.0))
        result = study.run(**cli.study_backend(args))
        result.report({"delay_mean": "mean-shift delay (steps)", "delay_shape": "shape-change delay (steps)",
                       "parameters": "parameters", "val_step_acc": "val per-step acc (%)"},
                      scale={"val_step_acc": 100}, bars=["mean-shift delay (steps)"],
                      bar_ylabel="mean-shift delay at 5% false alarms (steps)", bar_xlabel="detector",
                      curves=("train_loss", "val_loss"))
        result.raise_for_failures()
    findings = report(root, base, args.seeds)
    print(json.dumps({k: v for k, v in findings.items() if k != "mean_ratio_values"}, indent=1))
    print(f"tables and figures in {root}")
    return findings


if __name__ == "__main__":
    cli.run(main)
