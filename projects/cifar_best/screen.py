"""Which components make CIFAR-10 train best in little time? Short, seeded screening by successive halving.

The search space is cut into groups, screened one after another (coordinate descent): every condition
of a group changes one thing of the group's base recipe, all conditions train at the smallest budget,
the best 1/eta by validation accuracy continue from their checkpoints to the next budget, and so on
(shared_utils.study.Study.halving; each round trains its survivors afresh at its budget, so a round's score
is a whole run's at that budget). The group's winner joins the base of every later group, so the
model is chosen first and the evaluation tricks last. START is the recipe before any screening.

Groups (in order): model, augment, optimizer, schedule, regularise, batch, batchnorm, averaging.
Screening uses a seeded random subset of the training images (--limit-train, default 15,000), of which a
validation set is held out (--val-size 5,000), leaving 10,000 to train on, for 2 then 4 epochs (8 then 16
for augment and regularise, see BUDGETS; --budgets sets one schedule for all): budgets chosen to rank
components quickly, not to reach final accuracy.

Writes, under projects/cifar_best/runs/screen_<group>/: halving.json and halving.md (every round's
scores and who advanced), ranking.md/.csv (validation and test accuracy, training seconds and images/s
of each condition in the last round it ran), bars and curves, and one run folder per trial;
screen_summary.json gathers every group's winner. --resume continues an interrupted screening.
"""
from __future__ import annotations

import json
from pathlib import Path

from projects.cifar_best.training import check_config, train_trial
from shared_utils import cli, data, runs, stats
from shared_utils.atomic import atomic_write_json
from shared_utils.errors import UserError
from shared_utils.study import Study, StudyResult, trial_path

# ---- the recipe before screening: the published fast-training family's shape (see README), plain settings
START = {"model": "fastnet", "whiten": True, "augment": ["flip", "translate"], "label_smoothing": 0.2,
         "weight_decay": 5e-4, "optimizer": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": True,
         "lookahead_steps": 0, "lookahead_alpha": 0.5, "schedule": "linear", "warmup_epochs": 0.5,
         "batch_size": 512, "bn_momentum": 0.1, "bn_weight": True, "tta": "none", "ema_epochs": None,
         "precision": "auto", "report_all_tta": False, "epochs": 2}

GROUPS: dict[str, dict[str, dict]] = {
    "model": {
        "fastnet": {},
        "fastnet_small": {"model": "fastnet_small"},
        "fastnet, no whitening": {"whiten": False},
        "resnet20": {"model": "resnet20"},
        "resnet56": {"model": "resnet56"},
        "wrn16_4": {"model": "wrn16_4"},
    },
    "augment": {
        "flip + translate": {},
        "altflip + translate": {"augment": ["altflip", "translate"]},
        "flip + crop4": {"augment": ["flip", "crop"]},
        "flip + translate + cutout": {"augment": ["flip", "translate", "cutout"]},
        "flip": {"augment": ["flip"]},
        "none": {"augment": []},
    },
    "optimizer": {
        "sgd nesterov lr 0.2": {},
        "sgd nesterov lr 0.1": {"lr": 0.1},
        "sgd nesterov lr 0.4": {"lr": 0.4},
        "sgd + lookahead(5, 0.5)": {"lookahead_steps": 5},
        "adamw lr 2e-3": {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05},
        "adam lr 1e-3": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0},
    },
    "schedule": {
        "linear, warm-up 0.5 ep": {},
        "linear, no warm-up": {"warmup_epochs": 0.0},
        "linear, warm-up 1 ep": {"warmup_epochs": 1.0},
        "cosine, warm-up 0.5 ep": {"schedule": "cosine"},
        "one-cycle": {"schedule": "onecycle"},
        "constant, warm-up 0.5 ep": {"schedule": "none"},
    },
    "regularise": {
        "smoothing 0.2, wd 5e-4": {},
        "smoothing 0": {"label_smoothing": 0.0},
        "smoothing 0.1": {"label_smoothing": 0.1},
        "smoothing 0.3": {"label_smoothing": 0.3},
        "wd 2e-4": {"weight_decay": 2e-4},
        "wd 1e-3": {"weight_decay": 1e-3},
    },
    "batch": {   # the learning rate scales with the batch (the linear scaling rule)
        "batch 512": {},
        "batch 256": {"batch_size": 256, "lr_x": 0.5},
        "batch 1024": {"batch_size": 1024, "lr_x": 2.0},
    },
    "batchnorm": {
        "momentum 0.1": {},
        "momentum 0.4": {"bn_momentum": 0.4},
        "momentum 0.02": {"bn_momentum": 0.02},
        "scales fixed at 1": {"bn_weight": False},
    },
    "averaging": {
        "none": {},
        "tta flip": {"tta": "flip"},
        "tta flip + translate": {"tta": "flip_translate"},
        "ema 0.5 epoch": {"ema_epochs": 0.5},
        "ema 0.5 epoch + tta flip + translate": {"ema_epochs": 0.5, "tta": "flip_translate"},
    },
}
# epochs of each halving round. Regularisers only pay once a model starts to over-fit, which 4 epochs on 10,000
# images never reach (the first screening, at 2 and 4 epochs, ranked "flip only" and "no augmentation" first), so
# those groups screen at 8 and 16 epochs.
BUDGETS = {"augment": [8, 16], "regularise": [8, 16]}
DEFAULT_BUDGETS = [2, 4]
QUICK = {"budgets": [1, 2], "limit_train": 384, "val_size": 128, "test_subset": 256}
SCALED = ("lr_x",)   # condition keys that are not recipe keys: lr_x multiplies the base lr


def resolve(base: dict, overrides: dict) -> dict:
    """A condition's recipe: the base with the overrides applied (lr_x multiplies the base's lr)."""
    config = {**base, **{k: v for k, v in overrides.items() if k not in SCALED}}
    if "lr_x" in overrides:
        config["lr"] = base["lr"] * float(overrides["lr_x"])
    return config


def trial(config: dict) -> dict:
    return train_trial(config, __file__)


def load_space(path: Path) -> dict[str, dict[str, dict]]:
    """A search space from JSON: {group: {condition: overrides of START}}; every name checked before anything runs."""
    try:
        space = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"--space {path}: not a readable JSON search space ({type(exc).__name__}); "
                        "give {\"group\": {\"condition\": {\"key\": value}}}") from None
    if not isinstance(space, dict) or not space or not all(
            isinstance(g, dict) and g and all(isinstance(o, dict) for o in g.values()) for g in space.values()):
        raise UserError(f"--space {path}: expected {{group: {{condition: {{key: value}}}}}} with at least one "
                        "group and condition")
    for group, conditions in space.items():
        for condition, overrides in conditions.items():
            unknown = sorted(set(overrides) - set(START) - set(SCALED))
            if unknown:
                raise UserError(f"--space {path}: unknown component {unknown[0]!r} in group {group!r}, condition "
                                f"{condition!r}; known: {', '.join(sorted(START))}, lr_x")
            check_config(resolve(START, overrides), where=f"--space group {group!r}, condition {condition!r}")
    return space


def group_study(name: str, space: dict[str, dict], base: dict, args, settings: dict) -> Study:
    conditions = {c: {k: v for k, v in resolve(base, o).items() if base.get(k) != v} for c, o in space.items()}
    for c, o in conditions.items():
        check_config({**base, **o}, where=f"group {name}, condition {c!r}")
    return Study(f"screen_{name}", trial, conditions, args.seeds, runs.root(__file__, out=args.out),
                 base={**base, **settings}, resume=args.resume, budget_key="epochs")


def ranking(rounds: list[dict], path: Path, group: str) -> str:
    """ranking.md/.csv: every condition in the last round it reached, best first."""
    reached = {}
    for r in rounds:
        for c in r["scores"]:
            reached[c] = r
    header = ["rank", "condition", "round (epochs)", "val acc (%)", "test acc (%)", "train seconds", "images/s"]
    rows = []
    order = sorted(reached, key=lambda c: (-reached[c]["round"], -reached[c]["scores"][c]))
    study = StudyResult.load(path)
    found = study.summaries()     # each condition as its last round left it
    for i, c in enumerate(order, 1):
        r = reached[c]
        # a folder from before a halving's manifest listed every round: an eliminated condition's own folder
        summaries = found.get(c) or [runs.read_summary(trial_path(path, c, s)) for s in study.seeds
                                     if (trial_path(path, c, s) / "summary.json").is_file()]
        test = [s["test_acc"] * 100 for s in summaries]
        seconds = [s["train_seconds"] for s in summaries]
        ips = [s["images_per_s"] for s in summaries]
        rows.append([i, c, f"{r['round']} ({r['budget']})", f"{100 * r['scores'][c]:.2f}",
                     stats.ci_cell(test), f"{sum(seconds) / len(seconds):.1f}" if seconds else "",
                     f"{sum(ips) / len(ips):.0f}" if ips else ""])
    stats.write_table(header, rows, path / "ranking",
                      caption=f"Screening group {group!r}: each condition in the last round it reached (val acc: "
                              f"seed mean; test acc: mean ± std [95% CI] over seeds), best first")
    return "\n".join(" | ".join(map(str, row)) for row in [header] + rows)


def main(argv=None):
    p = cli.parser(__doc__, epochs=START["epochs"], batch_size=START["batch_size"], lr=START["lr"], seeds=True,
                   quick={k: v for k, v in QUICK.items() if k != "budgets"})
    p.add_argument("--groups", nargs="+", default=list(GROUPS),
                   help=f"groups to screen, in this order ({', '.join(GROUPS)})")
    p.add_argument("--budgets", type=cli.positive_int, nargs="+", default=None,
                   help=f"epochs of each halving round, increasing, for every group (default: {DEFAULT_BUDGETS}, "
                        f"and {BUDGETS['augment']} for augment and regularise)")
    p.add_argument("--space", type=cli.existing_file, default=None,
                   help="a JSON search space {group: {condition: {key: value}}} to screen instead of GROUPS")
    p.add_argument("--eta", type=int, default=2, help="keep the best 1/eta of the conditions after each round (>= 2)")
    p.set_defaults(limit_train=15_000)   # 10,000 training images per trial beside the 5,000 validation images
    p.add_argument("--val-size", type=cli.positive_int, default=5000, help="validation images (ranked on)")
    cli.add_test_subset(p)
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    if args.quick and args.budgets is None:
        args.budgets = QUICK["budgets"]
    groups = load_space(args.space) if args.space else GROUPS
    if args.space and args.groups == p.get_default("groups"):
        args.groups = list(groups)
    unknown = [g for g in args.groups if g not in groups]
    if unknown:
        raise UserError(f"unknown screening group {unknown[0]!r}; choose from {', '.join(groups)}")
    if args.eta < 2:
        raise UserError(f"--eta must be at least 2 (keep the best half or fewer), got {args.eta}")
    if args.budgets is not None and list(args.budgets) != sorted(set(args.budgets)):
        raise UserError(f"--budgets must increase, got {' '.join(map(str, args.budgets))}")
    settings = cli.data_settings(args)
    data.cifar10_from_settings(settings)           # no CIFAR-10 and no network: stop before any trial
    base = {**START, "lr": args.lr, "batch_size": args.batch_size}
    out = runs.root(__file__, out=args.out)
    summary_path = out / "screen_summary.json"
    summary = json.loads(summary_path.read_text()) if (args.resume or args.report_only) and summary_path.exists() else {}
    for group in groups:   # in the groups' order; a group not asked for passes on its earlier winner, if any
        if group not in args.groups:
            done = out / f"screen_{group}" / "halving.json"
            if done.exists():
                winner = json.loads(done.read_text())["rounds"][-1]["kept"][0]
                base = resolve(base, groups[group].get(winner, {}))
            continue
        study = group_study(group, groups[group], base, args, settings)
        budgets = args.budgets or BUDGETS.get(group, DEFAULT_BUDGETS)
        if args.report_only:       # the rounds and every trial as its last round left it, from the folder
            if not (study.path / "halving.json").is_file():
                raise UserError(f"no screening of {group!r} in {study.path}; run the study first (without "
                                "--report-only)")
            rounds = runs.read_json(study.path / "halving.json")["rounds"]
            last = StudyResult.load(study.path).only(list(rounds[-1]["scores"]))
        else:
            result = study.halving(budgets, metric="final_val_acc", eta=args.eta, restart=True,
                                   **cli.study_backend(args))
            rounds, last = result.rounds, result.last
        winner = rounds[-1]["kept"][0]
        table = ranking(rounds, study.path, group)
        print(f"\n[{group}] winner: {winner}\n{table}", flush=True)
        last.report({"test_acc": "test acc (%)", "final_val_acc": "val acc (%)"}, scale=100,
                           bar_title=f"Screening {group}: final round, mean and 95% CI over seeds",
                           bar_xlabel="condition", bar_ylabel="validation accuracy (%)", bars=["val acc (%)"])
        base = resolve(base, groups[group][winner])
        summary[group] = {"winner": winner, "overrides": groups[group][winner], "budgets": budgets,
                          "seeds": args.seeds, "failed": [c for r in rounds for c in r["failed"]]}
        atomic_write_json(summary_path, {**summary, "recipe": base})
        last.raise_for_failures()
    print(f"\nscreened recipe: {json.dumps(base)}")
    return base


if __name__ == "__main__":
    cli.run(main)
