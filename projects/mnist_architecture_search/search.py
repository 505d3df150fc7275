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

from pathlib import Path

import numpy as np
import torch

from projects.mnist_architecture_search import analysis, budgets
from projects.mnist_architecture_search.models import TwoConvCNN
from projects.mnist_architecture_search import figures
from shared_utils import cli, data, plots, runs, stats
from shared_utils.errors import UserError
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit, load_best
from shared_utils.pytorch.models import ACTIVATIONS, MLP, count_parameters
from shared_utils.pytorch.pipeline import loaders, random_crop
from shared_utils.study import Axis, Grid, Study, grid, start

# ---- the one recipe every model trains with; --epochs, --batch-size and --lr override it
HP = {"epochs": 8, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "momentum": 0.0, "nesterov": False,
      "weight_decay": 0.0, "schedule": "cosine", "family": "mlp", "depth": 2, "budget": 50_000,
      "activation": "relu", "shift": 0, "dropout": 0.0}
OPTIMIZERS = {   # each at its customary learning rate (the optimizer x activation study's rows)
    "SGD": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0},
    "SGD+momentum": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    "Adam": {"optimizer": "adam", "lr": 1e-3},
    "AdamW": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01},
}
# training choices at a fixed architecture (the recipe part): each a change to HP; "epochs_x" multiplies --epochs.
# The "base" recipe is HP itself, whose trials the depth_width and cnn parts already hold.
RECIPES = {
    "shift 1px": {"shift": 1},
    "shift 2px": {"shift": 2},
    "dropout 0.2": {"dropout": 0.2},
    "2x epochs": {"epochs_x": 2},
    "2x epochs, shift 1px": {"epochs_x": 2, "shift": 1},
    "2x epochs, shift 1px, dropout 0.1": {"epochs_x": 2, "shift": 1, "dropout": 0.1},
}
CNN_RECIPES = ("shift 1px", "2x epochs, shift 1px")    # the CNN has no dropout layer
PARTS = ("baseline", "depth_width", "optim_act", "cnn", "recipe")
TARGET_ACC = 0.98      # "epochs to 98%" on the validation set


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


# --------------------------------------------------------------------------- the four studies
def conditions(part: str, args) -> Grid:
    """Each part's grid of conditions. Their names ("10k, depth 2", "SGD, relu", "cnn 25k", "MLP 200k, depth 2:
    shift 1px") come from the levels; a report finds a condition by its levels (Grid.find), never by its name."""
    kilo = lambda prefix: (lambda b: f"{prefix}{b // 1000}k")   # noqa: E731
    if part == "baseline":
        return grid(family={"linear": {"family": "linear"}})
    if part == "depth_width":
        return grid(budget=Axis(args.budgets, label=kilo("")), depth=Axis(args.depths, label=lambda d: f"depth {d}"))
    if part == "optim_act":
        return grid(optimizer={o: OPTIMIZERS[o] for o in args.optimizers}, activation=args.activations).with_overrides(
            lambda c: {"budget": args.grid_budget, "depth": args.grid_depth})
    if part == "cnn":
        return grid(budget=Axis(args.budgets, label=kilo("cnn "))).with_overrides(lambda c: {"family": "cnn"})
    recipes = {}
    for name, change in RECIPES.items():       # "epochs_x" multiplies --epochs
        change = dict(change)
        if "epochs_x" in change:
            change["epochs"] = change.pop("epochs_x") * args.epochs
        recipes[name] = change
    mlp = {recipe_model("mlp", args): {"budget": args.recipe_budget, "depth": args.recipe_depth}}
    out = grid(model=mlp, recipe=recipes).joined(": ")
    for b in args.recipe_cnn_budgets:
        cnn = {recipe_model("cnn", args, b): {"family": "cnn", "budget": b}}
        out = out + grid(model=cnn, recipe={r: recipes[r] for r in CNN_RECIPES}).joined(": ")
    return out


def recipe_model(family: str, args, budget: int | None = None) -> str:
    if family == "mlp":
        return f"MLP {args.recipe_budget // 1000}k, depth {args.recipe_depth}"
    return f"CNN {budget // 1000}k"


def report(root: Path, args) -> dict:
    """Every table and figure of the study, from the run folders only (analysis.collect / analysis.curves)."""
    seeds, n = args.seeds, len(args.seeds)
    out = {}
    grids = {part: conditions(part, args) for part in PARTS}
    label = lambda b, d: grids["depth_width"].find(budget=b, depth=d).name   # noqa: E731
    cnn_name = lambda b: grids["cnn"].find(budget=b).name                      # noqa: E731
    # 1-3: depth vs width at equal budget -- accuracy table, figure, curves, epochs to 98%
    if "depth_width" in args.parts:
        found = analysis.collect(root, "depth_width", conditions("depth_width", args), seeds)
        acc = {name: [100 * s["test_acc"] for s in per] for name, per in found.items()}
        header = ["budget"] + [f"depth {d}" for d in args.depths]
        rows = [[f"{b:,}"] + [stats.ci_cell(acc[label(b, d)], n) for d in args.depths] for b in args.budgets]
        stats.write_table(header, rows, root / "depth_width" / "accuracy_by_budget_and_depth",
                          caption=f"Test accuracy (%), mean ± 95% CI over seeds {seeds}, {args.epochs} epochs")
        # epochs to a validation accuracy, from each seed's metrics.csv; the CNN of each budget beside the MLPs
        to98 = {}
        for target in (TARGET_ACC, 0.97):
            reached = {}
            for b in args.budgets:
                names = [("depth_width", label(b, d)) for d in args.depths] + [("cnn", cnn_name(b))]
                for part, name in names:
                    curves = analysis.curves(root, part, name, seeds) if part in args.parts else []
                    reached[name] = [analysis.first_epoch_at(m, target) for m in curves]
            rows = [[f"{b:,}"] + [epochs_cell(reached[label(b, d)], n) for d in args.depths] +
                    [epochs_cell(reached[cnn_name(b)], n)] for b in args.budgets]
            stats.write_table(header + ["CNN"], rows, root / "depth_width" / f"epochs_to_{round(100 * target)}",
                              caption=f"Epochs until validation accuracy first reaches {target:.0%}: mean over the "
                                      f"seeds that reach it within {args.epochs} epochs (how many of {n} did)")
            to98[f"{target:.0%}"] = reached
        series, bands = {}, {}
        for b in args.budgets:
            points = [(d, acc[label(b, d)]) for d in args.depths if acc[label(b, d)]]
            if points:
                name = f"{b:,} parameters"
                series[name] = ([d for d, _ in points], [np.mean(v) for _, v in points])
                bands[name] = [stats.summarize(v).ci95 if len(v) > 1 else 0.0 for _, v in points]
        if series:
            plots.line_plot(series, root / "depth_width" / "accuracy_vs_depth.png", bands=bands,
                            title="Depth vs width at equal parameter budget (mean and 95% CI)",
                            xlabel="hidden layers (width solved for the budget)", ylabel="test accuracy (%)")
        depth_curves(root, args)
        out["depth_width"] = {"accuracy": acc, "epochs_to_98": to98}
    # 4: optimizers x activations heat map
    if "optim_act" in args.parts:
        found = analysis.collect(root, "optim_act", conditions("optim_act", args), seeds)
        grid = np.full((len(args.optimizers), len(args.activations)), np.nan)
        notes = [["" for _ in args.activations] for _ in args.optimizers]
        for i, o in enumerate(args.optimizers):
            for j, a in enumerate(args.activations):
                values = [100 * s["test_acc"] for s in found[grids["optim_act"].find(optimizer=o, activation=a).name]]
                if values:
                    grid[i, j] = np.mean(values)
                notes[i][j] = stats.ci_cell(values, n)
        plots.annotated_heatmap(grid, args.optimizers, args.activations, root / "optim_act" / "heatmap.png",
                                title=f"Test accuracy (%) by optimizer and activation ({args.grid_budget:,} "
                                      f"parameters, depth {args.grid_depth}; mean ± 95% CI)",
                                xlabel="hidden activation", ylabel="optimizer (own learning rate)",
                                colorbar_label="mean test accuracy (%)", annotations=notes)
        panels = []     # overlaid curves: a panel per optimizer, a line per activation (mean over seeds)
        for o in args.optimizers:
            series = {}
            for a in args.activations:
                per = analysis.curves(root, "optim_act", grids["optim_act"].find(optimizer=o, activation=a).name, seeds)
                if per:
                    series[a] = analysis.mean_curve(per, "val_acc", 100)
            if series:
                panels.append({"series": series, "title": o, "xlabel": "epoch", "ylabel": "validation accuracy (%)"})
        if panels:
            plots.line_panels(panels, root / "optim_act" / "curves_by_optimizer.png", ncols=min(4, len(panels)),
                              title=f"Validation accuracy by optimizer and activation (mean over seeds {seeds})")
        out["optim_act"] = {grids["optim_act"].find(optimizer=o, activation=a).name: notes[i][j]
                            for i, o in enumerate(args.optimizers) for j, a in enumerate(args.activations)}
    # training choices at a fixed architecture: the "base" column is the depth_width / cnn parts' trial
    if "recipe" in args.parts:
        out["recipe"] = recipe_report(root, args)
    # 5: efficiency -- Pareto frontiers of each family against parameters, FLOPs and seconds
    if "cnn" in args.parts and "depth_width" in args.parts:
        families = {"MLP": analysis.collect(root, "depth_width", conditions("depth_width", args), seeds),
                    "CNN": analysis.collect(root, "cnn", conditions("cnn", args), seeds)}
        for key, axis in (("parameters", "parameters (log scale)"), ("train_flops", "training FLOPs (log scale)"),
                          ("train_seconds", "training seconds on this CPU (log scale)")):
            points = {}
            for fam, found in families.items():
                rows = [(np.mean([s[key] for s in per]), [100 * s["test_acc"] for s in per])
                        for per in found.values() if per]
                if rows:
                    points[fam] = ([x for x, _ in rows], [np.mean(v) for _, v in rows],
                                   [stats.summarize(v).ci95 if len(v) > 1 else 0.0 for _, v in rows])
            if points:
                figures.pareto_frontier(points, root / f"pareto_{key}.png", xlabel=axis, ylabel="test accuracy (%)",
                                      title=f"Accuracy against {axis.split(' (')[0]}: MLP vs CNN, Pareto frontiers")
        out["efficiency"] = {fam: {name: {k: float(np.mean([s[k] for s in per])) for k in
                                          ("test_acc", "parameters", "train_flops", "train_seconds")}
                                   for name, per in found.items() if per}
                             for fam, found in families.items()}
        # the goals, over every MLP and CNN the study trained (recipe variants included)
        mlps = {**families["MLP"], **analysis.collect(root, "optim_act", conditions("optim_act", args), seeds)}
        cnns = dict(families["CNN"])
        if "recipe" in args.parts:
            recipe = {c.name: c.overrides for c in grids["recipe"]}
            found = analysis.collect(root, "recipe", recipe, seeds)
            mlps.update({k: v for k, v in found.items() if recipe[k].get("family", "mlp") == "mlp"})
            cnns.update({k: v for k, v in found.items() if recipe[k].get("family") == "cnn"})
        out["goals"] = analysis.goals(mlps, cnns)
    # 6: what the curves show that final accuracy hides
    out["curves"] = curves_report(root, args)
    runs.atomic_write_json(root / "analysis.json", out)
    return out


def _with(args, **flags):
    """The parsed flags with some replaced (to name a condition of a grid the command line did not ask for)."""
    import argparse

    return argparse.Namespace(**{**vars(args), **flags})


def epochs_cell(values: list[int | None], seeds: int) -> str:
    """'mean epochs (k of n seeds reached it)'; 'missing' without run folders."""
    if not values:
        return "missing"
    reached = [v for v in values if v is not None]
    text = f"{np.mean(reached):.1f}" if reached else "not reached"
    return f"{text} ({len(reached)} of {len(values)})" + (f", n={len(values)} of {seeds}" if len(values) < seeds else "")


def depth_curves(root: Path, args) -> None:
    """Training curves of every (budget, depth), mean over seeds: a loss panel (top row) and an accuracy
    panel (bottom row) per budget, one colour per depth, solid for training and dashed for validation."""
    rows = {"loss": [], "acc": []}
    for b in args.budgets:
        for kind in rows:
            series, styles = {}, {}
            for k, d in enumerate(args.depths):
                per = analysis.curves(root, "depth_width", conditions("depth_width", args).find(budget=b, depth=d).name,
                                      args.seeds)
                if not per:
                    continue
                color = plots.PALETTE[k % len(plots.PALETTE)]
                scale = 100 if kind == "acc" else 1
                series[f"depth {d}"] = analysis.mean_curve(per, f"train_{kind}", scale)
                series[f"_depth {d} validation"] = analysis.mean_curve(per, f"val_{kind}", scale)
                styles[f"depth {d}"] = {"color": color}
                styles[f"_depth {d} validation"] = {"color": color, "linestyle": "--"}
            if series:
                rows[kind].append({"series": series, "styles": styles, "logy": kind == "loss", "markers": False,
                                   "xlabel": "epoch", "title": f"{b:,} parameters: {'loss' if kind == 'loss' else 'accuracy'}",
                                   "ylabel": "cross-entropy (nats, log scale)" if kind == "loss" else "accuracy (%)"})
    panels = rows["loss"] + rows["acc"]
    if panels:
        plots.line_panels(panels, root / "depth_width" / "curves_by_budget.png", ncols=max(1, len(rows["loss"])),
                          title=f"MLP training curves at equal budgets (solid: train, dashed: validation; mean over "
                                f"seeds {args.seeds})")


def recipe_report(root: Path, args) -> dict:
    """Accuracy of each architecture under each recipe, the base recipe read from the grid parts."""
    seeds, n = args.seeds, len(args.seeds)
    recipe = conditions("recipe", args)
    found = analysis.collect(root, "recipe", recipe, seeds)
    # each architecture's "base" recipe is the grid parts' trial of the same model (named by those parts' grids)
    mlp_base = conditions("depth_width", _with(args, budgets=[args.recipe_budget], depths=[args.recipe_depth]))
    base = {recipe_model("mlp", args): ("depth_width", mlp_base.conditions[0].name)}
    for b in args.recipe_cnn_budgets:
        base[recipe_model("cnn", args, b)] = ("cnn", conditions("cnn", _with(args, budgets=[b])).conditions[0].name)
    columns = ["base"] + list(RECIPES)
    table, values, errors = {}, {}, {}
    for model, (part, base_name) in base.items():
        per = {"base": analysis.collect(root, part, [base_name], seeds)[base_name]}
        per.update({c["recipe"]: found[c.name] for c in recipe.where(lambda c: c["model"] == model)})
        acc = {r: [100 * s["test_acc"] for s in v] for r, v in per.items()}
        table[model] = {r: stats.ci_cell(acc[r], n) if r in acc else "not run" for r in columns}
        values[model] = {r: float(np.mean(v)) for r, v in acc.items() if v}
        errors[model] = {r: stats.summarize(v).ci95 if len(v) > 1 else 0.0 for r, v in acc.items() if v}
    stats.write_table(["model"] + columns, [[m] + [row[c] for c in columns] for m, row in table.items()],
                      root / "recipe" / "accuracy_by_recipe",
                      caption=f"Test accuracy (%), mean ± 95% CI over seeds {seeds}; base = {args.epochs} epochs of "
                              f"Adam with cosine decay, no augmentation; shift = random translation by up to that "
                              f"many pixels; 2x epochs = {2 * args.epochs}")
    shown = [v for row in values.values() for v in row.values()]
    if shown:
        low = min(v - errors[m].get(r, 0.0) for m, row in values.items() for r, v in row.items())
        plots.grouped_bars(values, root / "recipe" / "accuracy_by_recipe.png", errors=errors, series=columns,
                           ylim=(max(0.0, low - 0.5), min(100.0, max(shown) + 0.4)),
                           title="Training choices at a fixed architecture (mean and 95% CI)",
                           xlabel="architecture", ylabel="test accuracy (%, axis zoomed)")
    return table


def curves_report(root: Path, args) -> dict:
    """Curve statistics of every condition (table) and question 6's figure, choosing its examples by rule:
    the recipe MLP trained twice as long without and with shifts (over-fitting), the depth_width condition
    whose seeds disagree most at the last epoch vs the steadiest at its budget, and the optim_act condition
    gaining most over its last epochs vs the best one."""
    seeds = args.seeds
    stat = {}
    for part in args.parts:
        for c in conditions(part, args):
            s = analysis.condition_curve_stats(analysis.curves(root, part, c.name, seeds))
            if s:
                stat[(part, c.name)] = s
    rows = [[part, name, s["seeds"], f"{s['best_val_loss_epoch']:.1f} of {s['epochs']}",
             f"{100 * s['val_loss_rise']:+.1f}", f"{s['final_gap']:+.2f}", f"{s['late_gain']:+.2f}",
             f"{s['val_acc_spread_max']:.2f} (epoch {s['val_acc_spread_max_epoch']})" if "val_acc_spread_max" in s
             else "-", f"{s['val_acc_spread_final']:.2f}" if "val_acc_spread_final" in s else "-"]
            for (part, name), s in stat.items()]
    if rows:
        stats.write_table(["part", "condition", "seeds", "lowest val loss at epoch", "val loss rise to the end (%)",
                           "train - val acc at the end (points)", "val acc gain, last quarter (points)",
                           "largest seed spread of val acc (std, points)", "seed spread at the end (std, points)"],
                          rows, root / "curves_table",
                          caption="What the curves show, per condition (means over seeds; see analysis.py)")
    overfit = unstable = unfinished = None
    mlp, recipes = recipe_model("mlp", args), conditions("recipe", args)
    long, shifted = (("recipe", recipes.find(model=mlp, recipe=r).name) for r in ("2x epochs", "2x epochs, shift 1px"))
    if long in stat and shifted in stat:
        overfit = (long, shifted)
    spread = {k: s["val_acc_spread_final"] for k, s in stat.items() if k[0] == "depth_width" and "val_acc_spread_final" in s}
    if spread:
        budget_of = {c.name: c["budget"] for c in conditions("depth_width", args)}
        worst = max(spread, key=spread.get)
        steady = min((k for k in spread if budget_of[k[1]] == budget_of[worst[1]] and k != worst), key=spread.get,
                     default=None)
        unstable = (worst, steady) if steady else None
    late = {k: s["late_gain"] for k, s in stat.items() if k[0] == "optim_act" and np.isfinite(s["late_gain"])}
    if len(late) > 1:
        best = max((k for k in late), key=lambda k: np.mean([x["test_acc"] for x in analysis.collect(
            root, "optim_act", [k[1]], seeds)[k[1]]]))
        climbing = max(late, key=late.get)
        unfinished = (climbing, best) if climbing != best else None
    analysis.curves_figure(root, seeds, overfit=overfit, unstable=unstable, unfinished=unfinished,
                           out=root / "curves_what_accuracy_hides.png")
    return {"stats": {f"{part}/{name}": s for (part, name), s in stat.items()},
            "figure": {"overfit": overfit, "unstable": unstable, "unfinished": unfinished}}


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
    analysis = report(root, args)
    for part, values in analysis.items():
        if part == "optim_act":
            print("optimizer x activation: " + "; ".join(f"{k} {v}" for k, v in values.items()))
    print(f"tables and figures in {root}")
    return analysis


if __name__ == "__main__":
    cli.run(main)
