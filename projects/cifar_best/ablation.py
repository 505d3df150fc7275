"""What does each component of the final recipe buy? Remove one at a time, at the screening budget.

Every condition is the final recipe (recipe.HP) with one component taken out (the flip, the translation,
the whitening stem, label smoothing, weight decay, Nesterov momentum, the warm-up, bfloat16 ...), trained
on the screening's 10,000-image subset for --epochs with a 5,000-image validation set, over --seeds (at least 3 for a 95% CI). The table gives each condition's test accuracy (mean ± std
[95% CI]) and its paired drop against the full recipe (same seed, same images, same order), so a
component whose interval of drops sits above 0 is one the recipe needs. Test-time augmentation is
removed without retraining: its row scores the full recipe's own weights without TTA (SAME_WEIGHTS).

The table is built from the run folders' summary.json files alone: --report-only redraws it without
training. Outputs in projects/cifar_best/runs/ablation/.
"""
from __future__ import annotations

from pathlib import Path

from projects.cifar_best.training import RECIPE as HP
from projects.cifar_best.training import check_config, train_trial
from shared_utils import cli, data, plots, runs, stats
from shared_utils.errors import UserError
from shared_utils.study import Study, StudyResult

SCREEN_BUDGET = {"epochs": 4, "limit_train": 15_000, "val_size": 5000}   # 10,000 training images
QUICK = {"epochs": 1, "limit_train": 384, "val_size": 128, "test_subset": 256}


def removals(hp: dict) -> dict[str, dict]:
    """'full recipe' plus one condition per component the recipe uses, each taking only that one out."""
    out: dict[str, dict] = {"full recipe": {}}
    augment = list(hp["augment"])
    for name in augment:
        out[f"- {name}"] = {"augment": [a for a in augment if a != name]}
    if hp.get("whiten") and hp["model"].startswith("fastnet"):
        out["- whitening stem"] = {"whiten": False}
    if hp.get("label_smoothing"):
        out["- label smoothing"] = {"label_smoothing": 0.0}
    if hp.get("weight_decay"):
        out["- weight decay"] = {"weight_decay": 0.0}
    if hp["optimizer"] == "sgd" and hp.get("nesterov"):
        out["- nesterov (plain momentum)"] = {"nesterov": False}
    if hp.get("lookahead_steps"):
        out["- lookahead"] = {"lookahead_steps": 0}
    if hp.get("warmup_epochs") and hp["schedule"] != "onecycle":
        out["- warm-up"] = {"warmup_epochs": 0.0}
    if hp["schedule"] != "none":
        out[f"- {hp['schedule']} decay (constant lr)"] = {"schedule": "none"}
    if hp.get("ema_epochs"):
        out["- weight averaging (EMA)"] = {"ema_epochs": None}
    if hp.get("precision", "auto") == "auto":
        out["- bfloat16 (float32 throughout)"] = {"precision": "fp32"}
    return out


# Components removed at evaluation only: scored on the full recipe's own weights (each full-recipe trial
# reports its test accuracy under every TTA), so the drop is exactly paired and costs no training.
SAME_WEIGHTS = {"- test-time augmentation (same weights)": "test_acc_tta_none"}


def trial(config: dict) -> dict:
    return train_trial(config, __file__)


COLUMNS = {"test acc (%)": ("test_acc", 100), "val acc (%)": ("final_val_acc", 100),
           "train seconds": ("train_seconds", 1)}
CAPTION = ("Ablation at the screening budget: the final recipe with one component removed; test accuracy (last "
           "epoch) and its paired drop against the full recipe, mean ± std [95% CI] over seeds")


def table_from_folders(study_path: Path, conditions, *, reference: str = "full recipe",
                       same_weights: dict[str, str] | None = None, columns: dict = COLUMNS,
                       caption: str = CAPTION, name: str = "ablation",
                       drop_column: str = "drop vs full (points)",
                       time_ratio: tuple[str, str] | None = None) -> tuple[dict, str]:
    """{condition: {column: per-seed values}} read back from the study's folder (StudyResult.load), with each
    condition's paired drop in test accuracy against ``reference`` (seeds both have; ``drop_column``), and the table
    (``name``.md/.csv beside the runs). ``same_weights`` {row: summary key}: rows scored on the reference's own
    weights another way (TTA views), exactly paired, at no training cost; default SAME_WEIGHTS when the recipe
    uses TTA. ``columns`` {column: (summary key, scale)}. ``time_ratio`` (column, summary key): each trained
    condition's seconds over the reference's in the same seed, a paired ratio that stays comparable when seeds
    ran on different machines or settings (the absolute seconds columns do not)."""
    if same_weights is None:
        same_weights = SAME_WEIGHTS if HP.get("tta", "none") != "none" else {}
    per: dict[str, dict[int, dict]] = {}
    for o in StudyResult.load(study_path).outcomes:
        if o.trial.condition in conditions and o.status not in ("failed", "missing"):
            per.setdefault(o.trial.condition, {})[o.trial.seed] = o.summary
    if reference not in per:
        raise UserError(f"no finished {reference!r} run under {study_path}; run the ablation first")
    full = per[reference]
    for row, key in same_weights.items():
        if all(key in s for s in full.values()):
            per[row] = {k: {**s, "test_acc": s[key]} for k, s in full.items()}
    table = {}
    for c, seeds in per.items():
        row = {column: [scale * s[key] for s in seeds.values() if key in s] for column, (key, scale) in columns.items()}
        if c != reference:
            row[drop_column] = [100 * (full[k]["test_acc"] - seeds[k]["test_acc"]) for k in seeds if k in full]
        if time_ratio and c not in same_weights:
            column, key = time_ratio
            row[column] = [seeds[k][key] / full[k][key] for k in seeds
                           if k in full and key in seeds[k] and full[k].get(key)]
        table[c] = row
    text = stats.write_comparison(table, study_path / name, digits=2, caption=caption)
    return table, text


def drops_figure(table: dict, drop_column: str, path: Path, *, xlabel: str, title: str, budget: str) -> None:
    """Each condition's paired drop (``drop_column`` of table_from_folders) as a bar with its 95% CI. The title's
    second line gives ``budget`` and the seeds the bars average, read from the table: when conditions have
    different numbers of seeds (a study part-way through), each bar's label gives its own."""
    drops = {c: {"drop": v[drop_column]} for c, v in table.items() if drop_column in v}
    counts = {c: len(v["drop"]) for c, v in drops.items()}
    if len(set(counts.values())) > 1:
        drops = {f"{c} [{counts[c]}]": v for c, v in drops.items()}
        seeds = "seeds per bar in [ ]; one seed has no interval"
    else:
        n = next(iter(counts.values()), 0)
        seeds = f"{n} seed{'s' if n != 1 else ''}"
    means, errors = stats.bar_values(drops, {"drop": "drop (mean, 95% CI)"})
    if means:
        plots.grouped_bars(means, path, errors=errors, xlabel=xlabel, ylabel="test accuracy lost (points)",
                           title=f"{title}\n(paired with the same seed: mean and 95% CI over {seeds}; {budget})")


def main(argv=None):
    p = cli.parser(__doc__, epochs=SCREEN_BUDGET["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick=QUICK)
    p.set_defaults(limit_train=SCREEN_BUDGET["limit_train"])
    p.add_argument("--val-size", type=cli.positive_int, default=SCREEN_BUDGET["val_size"])
    cli.add_test_subset(p)
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    # each trial scores its test set with the recipe's TTA and without (SAME_WEIGHTS), not with every TTA
    hp = {**HP, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "report_all_tta": False}
    conditions = removals(hp)
    for name, overrides in conditions.items():
        check_config({**hp, **overrides}, where=f"ablation {name!r}")
    out = runs.root(__file__, out=args.out)
    if not args.report_only:
        settings = cli.data_settings(args)
        data.cifar10_from_settings(settings)
        study = Study("ablation", trial, conditions, args.seeds, out, base={**hp, **settings}, resume=args.resume)
        result = study.run(**cli.study_backend(args))
        result.raise_for_failures()
    table, text = table_from_folders(out / "ablation", conditions)
    drops_figure(table, "drop vs full (points)", out / "ablation" / "drops.png", xlabel="component removed",
                 title="Ablation: accuracy lost when one component is removed",
                 budget=f"{args.epochs} epochs on {args.limit_train - args.val_size} images")
    print(text)
    return table


if __name__ == "__main__":
    cli.run(main)
