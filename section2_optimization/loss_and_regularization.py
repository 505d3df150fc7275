"""Does the loss or the regulariser matter more on a small noisy task, and what do the curves say?

Data: Gaussian features, a hidden non-linear rule for a binary label, 5% of labels flipped,
80/20 train/validation split (shared_utils.data.nonlinear_tabular).

Part 1 re-runs the source notebooks as they were: (1) 2->4->1 with binary cross-entropy on
1,000 samples; (2) 3->5->1 with MSE on 1.5x the data; (3) 4->7->1 with MSE and L2 0.01;
Adam at lr 0.001. Each gets train/validation loss curves and an automatic diagnosis.
Their loss values cannot be compared with each other (different losses, data and inputs).

Part 2 is the controlled version: one dataset and one network, and only one thing changes at
a time: the loss (BCE vs MSE on a sigmoid), the regulariser (none, L2, dropout), the depth,
or the activation (ReLU, tanh, LeakyReLU). They are compared on validation accuracy, which
means the same thing for every loss, over several seeds.
"""
from __future__ import annotations

import argparse

import numpy as np

from section2_optimization import layers
from section2_optimization.losses import bce_with_logits, sigmoid_mse
from section2_optimization.optim import Adam
from section2_optimization.trainer import History, evaluate, fit
from shared_utils import cli, data, plots, runs, stats
from shared_utils.seed import seed_everything
from shared_utils.study import Study, start

LABEL_NOISE = 0.05
LOSS_FNS = {"BCE": bce_with_logits, "MSE": sigmoid_mse}
SOURCE_EXPERIMENTS = [  # (name, features, hidden, loss, samples, L2)
    ("1: 2-4-1, BCE", 2, 4, "BCE", 1000, 0.0),
    ("2: 3-5-1, MSE, 1.5x data", 3, 5, "MSE", 1500, 0.0),
    ("3: 4-7-1, MSE, L2 0.01", 4, 7, "MSE", 1500, 0.01),
]


def diagnose(history: History, label_noise: float = LABEL_NOISE) -> str:
    """Read the curves: under-fit, over-fit or good fit.

    - under-fit: training accuracy more than 10 points below the best possible (1 - label noise);
    - over-fit: validation loss ends more than 10% above its minimum, or training accuracy exceeds
      validation accuracy by more than 5 points;
    - otherwise a good fit.
    """
    train_acc, val_acc, val_loss = history.column("train_acc"), history.column("val_acc"), history.column("val_loss")
    if train_acc[-1] < (1 - label_noise) - 0.10:
        return "under-fit"
    if val_loss[-1] > 1.10 * val_loss.min() or train_acc[-1] - val_acc[-1] > 0.05:
        return "over-fit"
    return "good fit"


def split(points: data.Split, seed: int):
    order = np.random.default_rng(seed).permutation(len(points))
    cut = int(0.8 * len(points))
    tr, va = order[:cut], order[cut:]
    return (points.x[tr], points.y[tr, None]), (points.x[va], points.y[va, None])


def build(features: int, hidden: list[int], *, activation="relu", dropout=0.0, seed=0) -> layers.Sequential:
    return layers.mlp([features, *hidden, 1], activation=activation, dropout=dropout, seed=seed)


def train_once(args, features, hidden, loss, samples, l2, *, seed, run=None, activation="relu", dropout=0.0):
    points = data.nonlinear_tabular(samples, n_features=features, label_noise=LABEL_NOISE, seed=seed)
    train, val = split(points, seed)
    model = build(features, hidden, activation=activation, dropout=dropout, seed=seed)
    optimizer = Adam(model.parameters(), lr=args.lr, weight_decay=l2)  # L2 as in torch's Adam(weight_decay)
    history = fit(model, LOSS_FNS[loss], optimizer, train, val, epochs=args.epochs, batch_size=args.batch_size,
                  seed=seed, run=run, quiet=True, checkpoint=None)
    _, val_acc = evaluate(model, LOSS_FNS[loss], *val)
    return history, val_acc


def part1(args, root):
    results = {}
    for name, features, hidden, loss, samples, l2 in SOURCE_EXPERIMENTS:
        run = runs.RunDir(__file__, f"loss_and_regularization/source_{name[0]}", args, experiment_name=name)
        history, val_acc = train_once(args, features, [hidden], loss, samples, l2, seed=args.seed, run=run)
        verdict = diagnose(history)
        plots.learning_curves(run.path, title=f"Source experiment {name}: {verdict}",
                              loss_label=f"loss ({loss})")
        results[name] = run.summary(diagnosis=verdict, final_val_acc_model=val_acc, loss=loss)
        print(f"source {name:26s} final train loss {history.last['train_loss']:.3f}  val loss "
              f"{history.last['val_loss']:.3f}  val acc {val_acc:.3f}  -> {verdict}")
    return results


# ---- Part 2's hyper-parameters: the baseline every controlled variant changes in one place
HP = {"epochs": 100, "batch_size": 32, "lr": 0.001, "features": 4, "samples": 1500,
      "loss": "BCE", "l2": 0.0, "dropout": 0.0, "hidden": [16], "activation": "relu"}
VARIANTS = {  # condition -> the one change it makes
    "baseline": {},
    "MSE": {"loss": "MSE"},
    "L2 0.01": {"l2": 0.01},
    "dropout 0.3": {"dropout": 0.3},
    "2 hidden layers": {"hidden": [16, 16]},
    "3 hidden layers": {"hidden": [16, 16, 16]},
    "tanh": {"activation": "tanh"},
    "leaky_relu": {"activation": "leaky_relu"},
}
STUDIES = {  # the question each group answers -> (its label for a variant, the condition that trains it)
    "loss": {"BCE": "baseline", "MSE": "MSE"},
    "regularisation": {"none": "baseline", "L2 0.01": "L2 0.01", "dropout 0.3": "dropout 0.3"},
    "depth": {"1 hidden layer": "baseline", "2 hidden layers": "2 hidden layers", "3 hidden layers": "3 hidden layers"},
    "activation": {"relu": "baseline", "tanh": "tanh", "leaky_relu": "leaky_relu"},
}


def trial(config: dict) -> dict:
    """One controlled variant and seed (the baseline is trained once and shared by every group)."""
    run = start(config).run
    settings = argparse.Namespace(lr=config["lr"], epochs=config["epochs"], batch_size=config["batch_size"])
    history, val_acc = train_once(settings, config["features"], config["hidden"], config["loss"], config["samples"],
                                  config["l2"], seed=config["seed"], run=run, activation=config["activation"],
                                  dropout=config["dropout"])
    return run.summary(final_val_acc_model=val_acc, gap=history.last["train_acc"] - history.last["val_acc"])


def part2(args, root):
    study = Study("controlled", trial, VARIANTS, args.seeds, root, base=cli.hyperparameters(HP, args),
                  resume=args.resume)
    result = study.run_or_load(args)
    result.raise_for_failures()
    accs, gaps = result.values("final_val_acc_model", 100), result.values("gap", 100)
    table, bars, errors = {}, {}, {}
    for group, variants in STUDIES.items():
        for variant, condition in variants.items():
            label = f"{group}: {variant}"
            table[label] = {"val acc (%)": accs[condition], "train - val acc (points)": gaps[condition]}
            s = stats.summarize(accs[condition])
            bars.setdefault(group, {})[variant] = s.mean
            errors.setdefault(group, {})[variant] = 0.0 if s.n == 1 else s.ci95
            print(f"{label:32s} val acc {stats.format_mean_std(s)} %")
    features, samples = HP["features"], HP["samples"]
    header, rows = stats.comparison_rows(table)
    stats.write_table(header, rows, root / "controlled",
                      caption=f"One change at a time: {features} features, {samples} samples, 5% label noise, "
                              f"Adam lr {args.lr}, {args.epochs} epochs, seeds {args.seeds}; mean ± std [95% CI]")
    # one group per study, one bar per variant: regroup as {variant: {study: value}} for grouped_bars
    flat = {f"{group}\n{variant}": {"validation accuracy": v} for group, per in bars.items() for variant, v in per.items()}
    flat_err = {f"{group}\n{variant}": {"validation accuracy": errors[group][variant]}
                for group, per in bars.items() for variant in per}
    lo = min(v["validation accuracy"] for v in flat.values())
    plots.grouped_bars(flat, root / "controlled.png", errors=flat_err, ylim=(max(0, lo - 8), 100),
                       title=f"Change one thing at a time (mean and 95% CI over {len(args.seeds)} seeds)",
                       xlabel="what changed (study / variant)", ylabel="validation accuracy (%)")
    return table


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 5})
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    if args.seeds == [args.seed] and not args.quick:
        args.seeds = [0, 1, 2, 3, 4]  # comparisons default to five seeds
    seed_everything(args.seed)
    root = runs.root(__file__, "loss_and_regularization", args.out)
    if args.report_only:        # part 2 is the study; part 1 is a single demonstration, not redrawn
        return None, part2(args, root)
    source = part1(args, root)
    controlled = part2(args, root)
    runs.atomic_write_json(root / "controlled.json", controlled)
    return source, controlled


if __name__ == "__main__":
    cli.run(main)
