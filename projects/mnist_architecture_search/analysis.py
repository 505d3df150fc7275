"""Reading the study back: per-seed summaries and learning curves from the trials' run folders, what the
curves show that final accuracy hides, the issue's goals checked against the measured numbers, and the study's
report (every table and figure of search.py, drawn from the folders: report()).

Nothing here trains or invents a number: every value comes from a trial's ``summary.json`` or
``metrics.csv``, and a condition whose folders are missing is reported missing.

Curve statistics of one trial (its metrics.csv, one row per epoch):
  best_val_loss_epoch  the epoch with the lowest validation loss: over-fitting starts after it;
  val_loss_rise        how far the validation loss climbed from that minimum by the last epoch (fraction);
  final_gap            training minus validation accuracy at the last epoch (points);
  late_gain            validation accuracy gained over the last quarter of the epochs (points): a model
                       still climbing at the end was cut short rather than beaten.
Across seeds: ``val_acc_spread`` is the standard deviation of validation accuracy between seeds at each
epoch (points); its maximum shows instability that the final figure may average away.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from projects.mnist_architecture_search import budgets, figures
from projects.mnist_architecture_search.space import PARTS, RECIPES, TARGET_ACC, conditions, recipe_model, with_flags
from shared_utils import plots, runs, stats
from shared_utils.runs import read_metrics
from shared_utils.study import StudyResult

MLP_GOAL, MLP_GOAL_PARAMETERS = 98.3, 200_000       # best MLP at <= 200k parameters, mean of the seeds
CNN_GOAL_PARAMETERS = 25_000                        # a CNN this small beats every MLP up to 200k
LATE_GAIN_CLIMBING = 0.5                            # points gained over the last quarter that mean "cut short"


# --------------------------------------------------------------------------- reading run folders
def _part(root: Path, part: str) -> StudyResult | None:
    """One part of the study read back from its folder; None if that part has not run."""
    return StudyResult.load(root / part) if (root / part / "manifest.json").is_file() else None


def collect(root: Path, part: str, conds: Sequence[str], seeds: Sequence[int]) -> dict[str, list[dict]]:
    """{condition: [summary of each of ``seeds`` that finished]}: the only source of the report's numbers."""
    conds = [getattr(c, "name", c) for c in conds]      # a Grid's conditions, or their names
    r = _part(root, part)
    found = r.summaries(seeds) if r else {}
    return {name: found.get(name, []) for name in conds}


def curves(root: Path, part: str, condition: str, seeds: Sequence[int]) -> list[dict[str, np.ndarray]]:
    """The metrics.csv of each finished seed (one whose summary.json exists) of a condition."""
    r = _part(root, part)
    if r is None or condition not in {c.name for c in r.conditions}:
        return []
    paths = [r.trial_path(condition, seed) for seed in seeds]
    return [read_metrics(p) for p in paths if (p / "summary.json").is_file() and (p / "metrics.csv").is_file()]


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval; a single value is its own interval."""
    s = stats.summarize(values)
    half = 0.0 if s.n == 1 else s.ci95
    return s.mean, s.mean - half, s.mean + half


# --------------------------------------------------------------------------- what the curves show
def curve_stats(metrics: Mapping[str, np.ndarray]) -> dict:
    """The curve statistics of one trial (see the module docstring)."""
    epochs, val_loss = metrics["epoch"], metrics["val_loss"]
    best = int(np.nanargmin(val_loss))
    val_acc, train_acc = 100 * metrics["val_acc"], 100 * metrics["train_acc"]
    quarter = max(1, len(epochs) // 4)
    return {"epochs": int(len(epochs)), "best_val_loss_epoch": int(epochs[best]),
            "val_loss_rise": float(val_loss[-1] / val_loss[best] - 1.0),
            "final_gap": float(train_acc[-1] - val_acc[-1]),
            "late_gain": float(val_acc[-1] - val_acc[-1 - quarter]) if len(epochs) > quarter else float("nan")}


def condition_curve_stats(per_seed: Sequence[Mapping[str, np.ndarray]]) -> dict | None:
    """Each statistic's mean over seeds, and the between-seed spread of validation accuracy by epoch."""
    if not per_seed:
        return None
    each = [curve_stats(m) for m in per_seed]
    out = {key: float(np.mean([e[key] for e in each])) for key in each[0] if key != "epochs"}
    out["best_val_loss_epochs"] = [e["best_val_loss_epoch"] for e in each]
    out["epochs"], out["seeds"] = each[0]["epochs"], len(each)
    length = min(len(m["val_acc"]) for m in per_seed)
    if len(per_seed) > 1:
        spread = np.std([100 * m["val_acc"][:length] for m in per_seed], axis=0, ddof=1)
        out["val_acc_spread_max"] = float(spread.max())
        out["val_acc_spread_max_epoch"] = int(per_seed[0]["epoch"][int(spread.argmax())])
        out["val_acc_spread_final"] = float(spread[-1])
    return out


def first_epoch_at(metrics: Mapping[str, np.ndarray], target: float, column: str = "val_acc") -> int | None:
    """The first epoch whose ``column`` reaches ``target``, or None if none does."""
    hits = np.flatnonzero(metrics[column] >= target)
    return int(metrics["epoch"][hits[0]]) if hits.size else None


def mean_curve(per_seed: Sequence[Mapping[str, np.ndarray]], column: str, scale: float = 1.0):
    length = min(len(m[column]) for m in per_seed)
    return per_seed[0]["epoch"][:length], scale * np.mean([m[column][:length] for m in per_seed], axis=0)


def curves_figure(root: Path, seeds: Sequence[int], *, overfit: tuple[tuple[str, str], tuple[str, str]] | None,
                  unstable: tuple[tuple[str, str], tuple[str, str]] | None,
                  unfinished: tuple[tuple[str, str], tuple[str, str]] | None, out: Path) -> Path | None:
    """Question 6 in one figure. Each argument names ((part, condition) shown, (part, condition) it is
    compared with): ``overfit`` a long run without and with augmentation (loss, then accuracy),
    ``unstable`` the condition whose seeds disagree most at the end and a steady one (validation accuracy
    of every seed), ``unfinished`` the condition gaining most over its last epochs and the best one."""
    panels = []
    if overfit:
        loaded = [(c, curves(root, part, c, seeds)) for part, c in overfit]
        if all(per for _, per in loaded):
            series, styles, acc_series, acc_styles = {}, {}, {}, {}
            titles = []
            for k, (name, per) in enumerate(loaded):
                color = plots.PALETTE[k]
                s = condition_curve_stats(per)
                for split, dash in (("train", "-"), ("val", "--")):
                    label = f"{name}: {'train' if split == 'train' else 'validation'}"
                    series[label] = mean_curve(per, f"{split}_loss")
                    styles[label] = {"color": color, "linestyle": dash}
                    acc_series[label] = mean_curve(per, f"{split}_acc", 100)
                    acc_styles[label] = {"color": color, "linestyle": dash}
                titles.append(f"epoch {s['best_val_loss_epoch']:.0f} (+{100 * s['val_loss_rise']:.0f}% by the end)")
            panels.append({"series": series, "styles": styles, "logy": True, "xlabel": "epoch",
                           "ylabel": "cross-entropy (nats, log scale)",
                           "title": "Over-fitting onset: lowest validation loss at\n" + " vs ".join(titles)})
            panels.append({"series": acc_series, "styles": acc_styles, "xlabel": "epoch", "ylabel": "accuracy (%)",
                           "title": "...which the accuracy curves barely show"})
    for pair, what in ((unstable, "unstable"), (unfinished, "unfinished")):
        if not pair:
            continue
        loaded = [(c, curves(root, part, c, seeds)) for part, c in pair]
        if not all(per for _, per in loaded):
            continue
        series, styles = {}, {}
        for k, (name, per) in enumerate(loaded):
            for i, m in enumerate(per):
                label = name if i == 0 else f"_{name} {i}"
                series[label] = (m["epoch"], 100 * m["val_acc"])
                styles[label] = {"color": plots.PALETTE[k], "alpha": 0.75, "linewidth": 1.2}
        s, other = condition_curve_stats(loaded[0][1]), condition_curve_stats(loaded[1][1])
        if what == "unstable":
            title = (f"Seeds settle on different plateaus (a line per seed):\n{loaded[0][0]}: std "
                     f"{s.get('val_acc_spread_final', float('nan')):.2f} points at the end, "
                     f"{loaded[1][0]}: {other.get('val_acc_spread_final', float('nan')):.2f}")
        else:
            verdict = "still climbing: cut short" if s["late_gain"] >= LATE_GAIN_CLIMBING else "plateaued, not cut short"
            title = (f"{loaded[0][0]}, the slowest finisher: {s['late_gain']:+.2f} points\nin the last "
                     f"{max(1, s['epochs'] // 4)} epochs ({verdict})")
        panels.append({"series": series, "styles": styles, "xlabel": "epoch", "ylabel": "validation accuracy (%)",
                       "title": title, "markers": False})
    if not panels:
        return None
    return plots.line_panels(panels, out, ncols=2,
                             title="What the training curves show that the final accuracy hides (MNIST)")


# --------------------------------------------------------------------------- the goals
def goals(mlps: Mapping[str, list[dict]], cnns: Mapping[str, list[dict]]) -> dict:
    """The issue's two accuracy goals, from summaries: the best MLP at <= 200k parameters against 98.3%,
    and whether some CNN at <= 25k parameters has a 95% interval wholly above every such MLP's."""
    def scored(found, limit):
        # "at <= 25k" means the budget: a model solved for it may hold up to TOLERANCE more (25,356 for 25k)
        out = {}
        for name, per in found.items():
            if per and per[0]["parameters"] <= limit * (1 + budgets.TOLERANCE):
                out[name] = interval([100 * s["test_acc"] for s in per]) + (len(per), per[0]["parameters"])
        return out

    small_mlps, small_cnns = scored(mlps, MLP_GOAL_PARAMETERS), scored(cnns, CNN_GOAL_PARAMETERS)
    result: dict = {}
    if small_mlps:
        best = max(small_mlps, key=lambda n: small_mlps[n][0])
        mean, low, high, n, size = small_mlps[best]
        result["best_mlp"] = {"condition": best, "mean": mean, "ci": [low, high], "seeds": n, "parameters": size,
                              "goal": MLP_GOAL, "met": mean >= MLP_GOAL, "margin": mean - MLP_GOAL}
        ceiling = max(small_mlps.values(), key=lambda v: v[2])
        top = next(n for n, v in small_mlps.items() if v == ceiling)
        winners = {n: v for n, v in small_cnns.items() if v[1] > ceiling[2]}
        result["cnn_beats_every_mlp"] = {
            "highest_mlp_ci_top": ceiling[2], "mlp_with_highest_ci_top": top, "mlps_compared": len(small_mlps),
            "cnns": {n: {"mean": v[0], "ci": [v[1], v[2]], "seeds": v[3], "parameters": v[4],
                         "beats_every_mlp": v[1] > ceiling[2]}
                     for n, v in small_cnns.items()},
            "met": bool(winners)}
    return result


# --------------------------------------------------------------------------- the study's report
def report(root: Path, args) -> dict:
    """Every table and figure of the study, from the run folders only (collect / curves)."""
    seeds, n = args.seeds, len(args.seeds)
    out = {}
    grids = {part: conditions(part, args) for part in PARTS}
    label = lambda b, d: grids["depth_width"].find(budget=b, depth=d).name   # noqa: E731
    cnn_name = lambda b: grids["cnn"].find(budget=b).name                      # noqa: E731
    # 1-3: depth vs width at equal budget -- accuracy table, figure, curves, epochs to 98%
    if "depth_width" in args.parts:
        found = collect(root, "depth_width", conditions("depth_width", args), seeds)
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
                    logs = curves(root, part, name, seeds) if part in args.parts else []
                    reached[name] = [first_epoch_at(m, target) for m in logs]
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
        found = collect(root, "optim_act", conditions("optim_act", args), seeds)
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
                per = curves(root, "optim_act", grids["optim_act"].find(optimizer=o, activation=a).name, seeds)
                if per:
                    series[a] = mean_curve(per, "val_acc", 100)
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
        families = {"MLP": collect(root, "depth_width", conditions("depth_width", args), seeds),
                    "CNN": collect(root, "cnn", conditions("cnn", args), seeds)}
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
        mlps = {**families["MLP"], **collect(root, "optim_act", conditions("optim_act", args), seeds)}
        cnns = dict(families["CNN"])
        if "recipe" in args.parts:
            recipe = {c.name: c.overrides for c in grids["recipe"]}
            found = collect(root, "recipe", recipe, seeds)
            mlps.update({k: v for k, v in found.items() if recipe[k].get("family", "mlp") == "mlp"})
            cnns.update({k: v for k, v in found.items() if recipe[k].get("family") == "cnn"})
        out["goals"] = goals(mlps, cnns)
    # 6: what the curves show that final accuracy hides
    out["curves"] = curves_report(root, args)
    runs.atomic_write_json(root / "analysis.json", out)
    return out


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
                per = curves(root, "depth_width", conditions("depth_width", args).find(budget=b, depth=d).name,
                                      args.seeds)
                if not per:
                    continue
                color = plots.PALETTE[k % len(plots.PALETTE)]
                scale = 100 if kind == "acc" else 1
                series[f"depth {d}"] = mean_curve(per, f"train_{kind}", scale)
                series[f"_depth {d} validation"] = mean_curve(per, f"val_{kind}", scale)
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
    found = collect(root, "recipe", recipe, seeds)
    # each architecture's "base" recipe is the grid parts' trial of the same model (named by those parts' grids)
    mlp_base = conditions("depth_width", with_flags(args, budgets=[args.recipe_budget], depths=[args.recipe_depth]))
    base = {recipe_model("mlp", args): ("depth_width", mlp_base.conditions[0].name)}
    for b in args.recipe_cnn_budgets:
        base[recipe_model("cnn", args, b)] = ("cnn", conditions("cnn", with_flags(args, budgets=[b])).conditions[0].name)
    columns = ["base"] + list(RECIPES)
    table, values, errors = {}, {}, {}
    for model, (part, base_name) in base.items():
        per = {"base": collect(root, part, [base_name], seeds)[base_name]}
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
            s = condition_curve_stats(curves(root, part, c.name, seeds))
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
        best = max((k for k in late), key=lambda k: np.mean([x["test_acc"] for x in collect(
            root, "optim_act", [k[1]], seeds)[k[1]]]))
        climbing = max(late, key=late.get)
        unfinished = (climbing, best) if climbing != best else None
    curves_figure(root, seeds, overfit=overfit, unstable=unstable, unfinished=unfinished,
                           out=root / "curves_what_accuracy_hides.png")
    return {"stats": {f"{part}/{name}": s for (part, name), s in stat.items()},
            "figure": {"overfit": overfit, "unstable": unstable, "unfinished": unfinished}}
