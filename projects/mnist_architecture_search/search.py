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

import torch

from projects.mnist_architecture_search import analysis, budgets
from projects.mnist_architecture_search.models import TwoConvCNN
from projects.mnist_architecture_search.space import OPTIMIZERS, PARTS, TARGET_ACC, conditions
from shared_utils import cli, data, plots, runs
from shared_utils.errors import UserError
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit, load_best
from shared_utils.pytorch.models import ACTIVATIONS, MLP, count_parameters
from shared_utils.pytorch.pipeline import loaders, random_crop
from shared_utils.study import Study, start

# ---- the one recipe every model trains with; --epochs, --batch-size and --lr override it
HP = {"epochs": 8, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "momentum": 0.0, "nesterov": False,
      "weight_decay": 0.0, "schedule": "cosine", "family": "mlp", "depth": 2, "budget": 50_000,
      "activation": "relu", "shift": 0, "dropout": 0.0}


def load(config: dict) -> data.Dataset:
    return data.mnist_from_settings(config)


def build(config: dict) -> torch.nn.Module:
    """The model a trial's configuration names."""
    family, activation = config["family"], config["activation"]
    if family == "linear":
        return MLP(hidden=(), in_features=784, classes=10)
    if family == "mlp":
        sizes = budgets.mlp_layer_sizes(config["budget"], config["depth"])
        return MLP(hidden=tuple(sizes[1:-1]), in_features=784, classes=10, activation=activation,
                   dropout=config["dropout"])
    return TwoConvCNN(*budgets.cnn_channels(config["budget"]), activation=activation)


def flops_per_example(config: dict) -> int:
    """Analytic training FLOPs of one example's pass (forward and backward) through the trial's model."""
    if config["family"] == "linear":
        return budgets.mlp_train_flops([784, 10], 1)
    if config["family"] == "mlp":
        return budgets.mlp_train_flops(budgets.mlp_layer_sizes(config["budget"], config["depth"]), 1)
    return budgets.cnn_train_flops(*budgets.cnn_channels(config["budget"]), 1)


def trial_cost(config: dict) -> float:
    """What the study runner schedules by (costliest first): FLOPs per example times epochs."""
    return flops_per_example(config) * config["epochs"]


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = load(config)
    model = build(config)
    augment = [random_crop(config["shift"])] if config["shift"] else []
    train, val, test = loaders(ds, batch_size=config["batch_size"], seed=t.seed, device=device, augment=augment)
    history = fit(model, train, val, TrainConfig.from_config(config), device=device, run=run,
                  quiet=config["quiet"], desc=config["condition"])
    load_best(model, run, device)
    scores = evaluate(model, test, device)
    reached = [row["epoch"] for row in history if row["val_acc"] >= TARGET_ACC]
    plots.learning_curves(run.path, title=f"{config['condition']} (seed {config['seed']})")
    epochs = len(history)
    return run.summary(test_acc=scores["acc"], test_loss=scores["loss"], parameters=count_parameters(model),
                       train_flops=flops_per_example(config) * len(ds.train) * epochs,
                       epochs_to_98=reached[0] if reached else None)


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 2, "limit_train": 3000, "budgets": [10_000, 50_000], "depths": [1, 3],
                          "optimizers": ["SGD", "Adam"], "activations": ["relu", "tanh"],
                          "recipe_budget": 50_000, "recipe_depth": 1, "recipe_cnn_budgets": [10_000]})
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--budgets", type=cli.bounded_int(100, 10_000_000, " parameters"), nargs="+",
                   default=list(budgets.BUDGETS))
    p.add_argument("--depths", type=cli.bounded_int(1, 50, " layers"), nargs="+", default=list(budgets.DEPTHS))
    p.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), default=list(OPTIMIZERS))
    p.add_argument("--activations", nargs="+", choices=sorted(ACTIVATIONS), default=["relu", "tanh", "gelu", "sigmoid"])
    p.add_argument("--grid-budget", type=cli.bounded_int(100, 10_000_000, " parameters"), default=50_000,
                   help="the budget of the optimizer x activation grid")
    p.add_argument("--grid-depth", type=cli.bounded_int(1, 50, " layers"), default=2)
    p.add_argument("--recipe-budget", type=cli.bounded_int(100, 10_000_000, " parameters"), default=200_000,
                   help="the MLP budget of the recipe part (training choices at a fixed architecture)")
    p.add_argument("--recipe-depth", type=cli.bounded_int(1, 50, " layers"), default=2)
    p.add_argument("--recipe-cnn-budgets", type=cli.bounded_int(100, 10_000_000, " parameters"), nargs="+",
                   default=[10_000, 25_000], help="CNN budgets the recipe part trains with the MLP's recipes")
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    for b in args.budgets:                 # every budget must fit every depth (and a CNN) before anything runs
        for d in args.depths:
            budgets.mlp_width(b, d)
        if "cnn" in args.parts:
            budgets.cnn_channels(b)
    budgets.mlp_width(args.grid_budget, args.grid_depth)
    budgets.mlp_width(args.recipe_budget, args.recipe_depth)
    for b in args.recipe_cnn_budgets:
        budgets.cnn_channels(b)
    root = runs.root(__file__, out=args.out)
    base = {**cli.hyperparameters(HP, args), **cli.data_settings(args)}
    if not args.report_only:
        load(base)                          # no data and no network: stop before any trial
        failures = []
        for part in args.parts:
            result = Study(part, trial, conditions(part, args), args.seeds, root, base=base,
                           resume=args.resume, cost=trial_cost).run(**cli.study_backend(args))
            result.report({"test_acc": "test acc (%)", "parameters": "parameters", "train_seconds": "train seconds"},
                          scale={"test_acc": 100}, bar_ylabel="test accuracy (%)", bar_xlabel="model",
                          caption=f"{part}: {args.epochs} epochs, seeds {args.seeds}; mean ± std [95% CI]")
            failures += result.failures
        if failures:
            print(f"{len(failures)} trial(s) failed; the report below leaves them out")
    elif not any((root / part / "manifest.json").is_file() for part in args.parts):
        raise UserError(f"no runs in {root}; run the study first (without --report-only)")
    findings = analysis.report(root, args)
    for part, values in findings.items():
        if part == "optim_act":
            print("optimizer x activation: " + "; ".join(f"{k} {v}" for k, v in values.items()))
    print(f"tables and figures in {root}")
    return findings


if __name__ == "__main__":
    cli.run(main)
