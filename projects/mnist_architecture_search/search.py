"""How much do architecture and training choices matter on MNIST when everything else is controlled?

Four studies on full MNIST (55,000 training, 5,000 validation, 10,000 test images), one recipe, several
seeds, all through the study runner (--workers 2 runs two trials at a time; --resume continues):
  baseline     the linear softmax classifier, the floor every model is compared with;
  depth_width  MLPs of 1-6 equal-width hidden layers whose width spends a parameter budget
               (10k-200k, solved analytically in budgets.py);
  optim_act    SGD, SGD + momentum, Adam, AdamW x ReLU, tanh, GELU, sigmoid at one budget and depth;
  cnn          two-convolution CNNs whose channels spend the same budgets.
Reports (tables with 95% CIs, curves, a heat map, Pareto frontiers by parameters, training FLOPs and
seconds) are built from the run folders' summary.json files only: --report-only redraws them without
training, and a trial whose folder is missing is reported missing. Outputs in
projects/mnist_architecture_search/runs/.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from projects.mnist_architecture_search import budgets
from shared_utils import cli, data, plots, runs, stats
from shared_utils.errors import UserError
from shared_utils.pytorch import device as devices
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit, load_best
from shared_utils.pytorch.models import ACTIVATIONS, MLP, TwoConvCNN, count_parameters
from shared_utils.pytorch.pipeline import TensorLoader
from shared_utils.seed import seed_everything
from shared_utils.study import Study

# ---- the one recipe every model trains with; --epochs, --batch-size and --lr override it
HP = {"epochs": 8, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "momentum": 0.0, "nesterov": False,
      "weight_decay": 0.0, "schedule": "cosine", "family": "mlp", "depth": 2, "budget": 50_000,
      "activation": "relu"}
OPTIMIZERS = {   # each at its customary learning rate (the optimizer x activation study's rows)
    "SGD": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0},
    "SGD+momentum": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    "Adam": {"optimizer": "adam", "lr": 1e-3},
    "AdamW": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01},
}
PARTS = ("baseline", "depth_width", "optim_act", "cnn")
TARGET_ACC = 0.98      # "epochs to 98%" on the validation set
VAL_SIZE = 5000


def load(config: dict) -> data.Dataset:
    limit = config["limit_train"]
    return data.cached("mnist", config["data_dir"], limit=limit, val_size=min(VAL_SIZE, (limit or 60000) // 6),
                       seed=config["data_seed"], quiet=config["quiet"])


def build(config: dict) -> tuple[torch.nn.Module, int]:
    """The model a trial's configuration names, and its analytic training FLOPs per example."""
    family, activation = config["family"], config["activation"]
    if family == "linear":
        return MLP(hidden=(), in_features=784, classes=10), budgets.mlp_train_flops([784, 10], 1)
    if family == "mlp":
        sizes = budgets.mlp_layer_sizes(config["budget"], config["depth"])
        return MLP(hidden=tuple(sizes[1:-1]), in_features=784, classes=10, activation=activation), \
            budgets.mlp_train_flops(sizes, 1)
    c1, c2 = budgets.cnn_channels(config["budget"])
    return TwoConvCNN(c1, c2, activation=activation), budgets.cnn_train_flops(c1, c2, 1)


def trial(config: dict) -> dict:
    seed_everything(config["seed"])
    device = devices.resolve(config["device"])
    ds = load(config)
    model, flops_per_example = build(config)
    run = runs.RunDir.for_trial(__file__, config)
    kw = dict(mean=ds.mean, std=ds.std, device=device)
    train = TensorLoader(ds.train.x, ds.train.y, batch_size=config["batch_size"], seed=config["seed"], **kw)
    val = TensorLoader(ds.val.x, ds.val.y, batch_size=1000, shuffle=False, **kw)
    test = TensorLoader(ds.test.x, ds.test.y, batch_size=1000, shuffle=False, **kw)
    history = fit(model, train, val, TrainConfig.from_config(config), device=device, run=run,
                  quiet=config["quiet"], desc=config["condition"])
    load_best(model, run, device)
    scores = evaluate(model, test, device)
    reached = [row["epoch"] for row in history if row["val_acc"] >= TARGET_ACC]
    plots.learning_curves(run.path, title=f"{config['condition']} (seed {config['seed']})")
    epochs = len(history)
    return run.summary(test_acc=scores["acc"], test_loss=scores["loss"], parameters=count_parameters(model),
                       train_flops=flops_per_example * len(ds.train) * epochs,
                       epochs_to_98=reached[0] if reached else None)


# --------------------------------------------------------------------------- the four studies
def conditions(part: str, args) -> dict[str, dict]:
    if part == "baseline":
        return {"linear": {"family": "linear"}}
    if part == "depth_width":
        return {f"{b // 1000}k, depth {d}": {"budget": b, "depth": d} for b in args.budgets for d in args.depths}
    if part == "optim_act":
        return {f"{o}, {a}": {**OPTIMIZERS[o], "activation": a, "budget": args.grid_budget, "depth": args.grid_depth}
                for o in args.optimizers for a in args.activations}
    return {f"cnn {b // 1000}k": {"family": "cnn", "budget": b} for b in args.budgets}


def collect(root: Path, part: str, conds: dict, seeds: list[int]) -> dict[str, list[dict]]:
    """{condition: [summary of each seed whose run folder holds one]}: the only source of the report's numbers."""
    from shared_utils.study import slug

    found = {}
    for name in conds:
        found[name] = [json.loads(p.read_text()) for seed in seeds
                       if (p := root / part / slug(name) / f"seed_{seed}" / "summary.json").is_file()]
    return found


def cell(values: list[float], seeds: int) -> str:
    if not values:
        return "missing"
    s = stats.summarize(values)
    text = f"{s.mean:.2f}" if s.n == 1 else f"{s.mean:.2f} ± {s.ci95:.2f}"
    return text + (f" (n={s.n} of {seeds})" if s.n < seeds else "")


def report(root: Path, args) -> dict:
    seeds = args.seeds
    out = {}
    # 1-3: depth vs width at equal budget -- accuracy table, figure, epochs to 98%
    if "depth_width" in args.parts:
        found = collect(root, "depth_width", conditions("depth_width", args), seeds)
        acc = {name: [100 * s["test_acc"] for s in per] for name, per in found.items()}
        header = ["budget"] + [f"depth {d}" for d in args.depths]
        rows = [[f"{b:,}"] + [cell(acc[f"{b // 1000}k, depth {d}"], len(seeds)) for d in args.depths]
                for b in args.budgets]
        stats.write_table(header, rows, root / "depth_width" / "accuracy_by_budget_and_depth",
                          caption=f"Test accuracy (%), mean ± 95% CI over seeds {seeds}, {args.epochs} epochs")
        series, bands = {}, {}
        for b in args.budgets:
            points = [(d, acc[f"{b // 1000}k, depth {d}"]) for d in args.depths if acc[f"{b // 1000}k, depth {d}"]]
            if points:
                label = f"{b:,} parameters"
                series[label] = ([d for d, _ in points], [np.mean(v) for _, v in points])
                bands[label] = [stats.summarize(v).ci95 if len(v) > 1 else 0.0 for _, v in points]
        if series:
            plots.line_plot(series, root / "depth_width" / "accuracy_vs_depth.png", bands=bands,
                            title="Depth vs width at equal parameter budget (mean and 95% CI)",
                            xlabel="hidden layers (width solved for the budget)", ylabel="test accuracy (%)")
        to98 = {name: [s["epochs_to_98"] for s in per if s.get("epochs_to_98")] for name, per in found.items()}
        out["depth_width"] = {"accuracy": acc, "epochs_to_98": to98}
    # 4: optimizers x activations heat map
    if "optim_act" in args.parts:
        found = collect(root, "optim_act", conditions("optim_act", args), seeds)
        grid = np.full((len(args.optimizers), len(args.activations)), np.nan)
        notes = [["" for _ in args.activations] for _ in args.optimizers]
        for i, o in enumerate(args.optimizers):
            for j, a in enumerate(args.activations):
                values = [100 * s["test_acc"] for s in found[f"{o}, {a}"]]
                if values:
                    grid[i, j] = np.mean(values)
                notes[i][j] = cell(values, len(seeds))
        plots.annotated_heatmap(grid, args.optimizers, args.activations, root / "optim_act" / "heatmap.png",
                                title=f"Test accuracy (%) by optimizer and activation ({args.grid_budget:,} "
                                      f"parameters, depth {args.grid_depth}; mean ± 95% CI)",
                                xlabel="hidden activation", ylabel="optimizer (own learning rate)",
                                colorbar_label="mean test accuracy (%)", annotations=notes)
        out["optim_act"] = {f"{o}, {a}": notes[i][j] for i, o in enumerate(args.optimizers)
                            for j, a in enumerate(args.activations)}
    # 5: efficiency -- Pareto frontiers of each family against parameters, FLOPs and seconds
    if "cnn" in args.parts and "depth_width" in args.parts:
        families = {"MLP": collect(root, "depth_width", conditions("depth_width", args), seeds),
                    "CNN": collect(root, "cnn", conditions("cnn", args), seeds)}
        for key, label in (("parameters", "parameters (log scale)"), ("train_flops", "training FLOPs (log scale)"),
                           ("train_seconds", "training seconds on this CPU (log scale)")):
            points = {}
            for fam, found in families.items():
                rows = [(np.mean([s[key] for s in per]), [100 * s["test_acc"] for s in per])
                        for per in found.values() if per]
                if rows:
                    points[fam] = ([x for x, _ in rows], [np.mean(v) for _, v in rows],
                                   [stats.summarize(v).ci95 if len(v) > 1 else 0.0 for _, v in rows])
            if points:
                plots.pareto_frontier(points, root / f"pareto_{key}.png", xlabel=label, ylabel="test accuracy (%)",
                                      title=f"Accuracy against {label.split(' (')[0]}: MLP vs CNN, Pareto frontiers")
        out["efficiency"] = {fam: {name: [s["test_acc"] for s in per] for name, per in found.items()}
                             for fam, found in families.items()}
    runs.atomic_write_json(root / "analysis.json", out)
    return out


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 2, "limit_train": 3000, "budgets": [10_000, 50_000], "depths": [1, 3],
                          "optimizers": ["SGD", "Adam"], "activations": ["relu", "tanh"]})
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--budgets", type=cli.bounded_int(100, 10_000_000, " parameters"), nargs="+",
                   default=list(budgets.BUDGETS))
    p.add_argument("--depths", type=cli.bounded_int(1, 50, " layers"), nargs="+", default=list(budgets.DEPTHS))
    p.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), default=list(OPTIMIZERS))
    p.add_argument("--activations", nargs="+", choices=sorted(ACTIVATIONS), default=["relu", "tanh", "gelu", "sigmoid"])
    p.add_argument("--grid-budget", type=cli.bounded_int(100, 10_000_000, " parameters"), default=50_000,
                   help="the budget of the optimizer x activation grid")
    p.add_argument("--grid-depth", type=cli.bounded_int(1, 50, " layers"), default=2)
    p.add_argument("--report-only", action="store_true", help="redraw the tables and figures from the run folders")
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    for b in args.budgets:                 # every budget must fit every depth (and a CNN) before anything runs
        for d in args.depths:
            budgets.mlp_width(b, d)
        if "cnn" in args.parts:
            budgets.cnn_channels(b)
    budgets.mlp_width(args.grid_budget, args.grid_depth)
    root = runs.root(__file__, out=args.out)
    base = {**cli.hyperparameters(HP, args), **cli.data_settings(args)}
    if not args.report_only:
        load(base)                          # no data and no network: stop before any trial
        failures = []
        for part in args.parts:
            result = Study(part, trial, conditions(part, args), args.seeds, root, base=base,
                           resume=args.resume).run(**cli.study_backend(args))
            result.report({"test_acc": "test acc (%)", "parameters": "parameters", "train_seconds": "train seconds"},
                          scale={"test_acc": 100}, bar_ylabel="test accuracy (%)", bar_xlabel="model",
                          caption=f"{part}: {args.epochs} epochs, seeds {args.seeds}; mean ± std [95% CI]")
            failures += result.failures
        if failures:
            print(f"{len(failures)} trial(s) failed; the report below leaves them out")
    elif not root.is_dir():
        raise UserError(f"no runs in {root}; run the study first (without --report-only)")
    analysis = report(root, args)
    for part, values in analysis.items():
        if part == "optim_act":
            print("optimizer x activation: " + "; ".join(f"{k} {v}" for k, v in values.items()))
    print(f"tables and figures in {root}")
    return analysis


if __name__ == "__main__":
    cli.run(main)
