"""What does each change of the Muon recipe buy? Undo one change at a time, putting the anchor's setting back.

The Muon recipe (recipe.py's default, MUON: airbench94_muon's settings) differs from the anchor (airbench94,
benchmarks/cifar_anchor.py) in its optimizer, its length and batch, its weight averaging and nothing else that
a flag can undo alone. Every condition below is the Muon recipe with one of those changes undone:

  Muon recipe                            MUON as it is: --epochs (8) of batch --batch-size (2,000)
  SGD instead of Muon                    the anchor's whole optimizer (Nesterov SGD for every weight, its rates,
                                         triangular schedule and Lookahead-like averaging; its head start and
                                         logit scale), trained for the same steps at the same batch
  + the anchor's weight averaging        MUON plus the anchor's averaging (every 5 steps from epoch 3)
  one epoch fewer                        MUON for --epochs - 1 (does the last epoch pay for its time?)
  batch 1024                             MUON at the anchor's batch size, same epochs (twice the steps)

Test-time augmentation is undone without training: the Muon recipe's own weights scored with one view and
with the mirror alone (every run scores all three), so those drops are exactly paired and free.

The table gives each condition's test accuracy (six views; last epoch), its paired drop against the Muon
recipe (same seed, so the same network start and data order: mean ± std [95% CI] over seeds; a drop whose
interval sits above 0 is a change the recipe needs), its counted seconds (as the papers count them), its
training seconds and its counted time over the Muon recipe's in the same seed (a paired ratio: the one time
figure that compares seeds run on different machines or with different allocator settings). At least 3
seeds for a CI. Built from the run folders alone: --report-only redraws it without training. Outputs in
projects/cifar_best/runs/muon_ablation/.

    python projects/cifar_best/muon_ablation.py --seeds 0 1 2 --resume --records projects/cifar_best/results
    python projects/cifar_best/muon_ablation.py --seeds 0 1 2 --report-only --out projects/cifar_best/results

--records keeps each finished run's JSON records (no weights) in projects/cifar_best/results/muon_ablation, which
the repository tracks: the 15 runs take more than one session, on machines that do not keep their run folders,
and a resumed study takes them back from there. The second command builds the table from those records alone.

The Muon recipe's runs are recipe.py's default runs, the same training: --recipe-runs FOLDER takes recipe.py's
finished runs (its study folder, runs/recipe_muon, or records of it) as the Muon recipe's seeds instead of
training them twice, each checked to have been made with these settings, on this CPU and with this process's
allocator setting (its times are paired with the other conditions'); its summary names where it came from.

    python projects/cifar_best/muon_ablation.py --seeds 0 1 2 --resume --records projects/cifar_best/results \
        --recipe-runs projects/cifar_best/results/cifar_anchor/cifar_best/recipe_muon

Each condition is a whole run on 50,000 images (35-45 minutes each on a 2-core CPU in float32, 15 runs for 3
seeds); --conditions picks some, --limit-train and --epochs shrink them for a look.
"""
from __future__ import annotations

from pathlib import Path

from projects.cifar_best.ablation import drops_figure, table_from_folders
from shared_utils import cli, data, runs
from shared_utils.errors import UserError
from shared_utils.pytorch import airbench
from shared_utils.pytorch.memory import freed_memory_kept
from shared_utils.study import Study, StudyResult, save_records, trial_path

MUON = airbench.AIRBENCH94_MUON
ANCHOR = airbench.AIRBENCH94
AVERAGING = ("ema_start_epoch", "ema_every", "ema_decay", "ema_power")     # the anchor's averaging, as it is
REFERENCE = "Muon recipe"
RECIPE_CONDITION = "recipe"          # recipe.py's one condition: its runs are REFERENCE's (--recipe-runs)
DROP = "drop vs the Muon recipe (points)"
TIME_RATIO = ("counted time / the Muon recipe's (same seed)", "counted_seconds")
QUICK = {"epochs": 2, "limit_train": 256, "test_subset": 256, "batch_size": 128}
# rows scored on the Muon recipe's own weights: every airbench run scores one view, the mirror and six views
SAME_WEIGHTS = {"one view instead of six (same weights)": "test_acc_tta_none",
                "the mirror alone instead of six views (same weights)": "test_acc_tta_flip"}
COLUMNS = {"test acc, 6 views (%)": ("test_acc", 100), "counted seconds": ("counted_seconds", 1),
           "train seconds": ("train_seconds", 1), "steps": ("steps", 1)}


def conditions(epochs: float, batch: int) -> dict[str, dict]:
    """The Muon recipe and one condition per change undone (config overrides the trial reads)."""
    return {
        REFERENCE: {},
        "SGD instead of Muon (the anchor's optimizer)": {"optimizer": "sgd"},
        "+ the anchor's weight averaging": {"averaging": True},
        f"one epoch fewer ({epochs - 1:g} instead of {epochs:g})": {"epochs": epochs - 1},
        f"batch 1024 instead of {batch}": {"batch_size": 1024},
    }


def settings_for(config: dict) -> dict:
    """The airbench settings a trial trains with: the anchor's for the SGD condition, else MUON (with the
    anchor's averaging added when asked)."""
    if config["optimizer"] == "sgd":
        return ANCHOR
    return {**MUON, **({k: ANCHOR[k] for k in AVERAGING} if config["averaging"] else {})}


def trial(config: dict) -> dict:
    return airbench.train(config, settings_for(config), __file__)


def adopt_recipe_runs(study: Study, source: Path, base: dict, records: Path | None) -> list[int]:
    """Take recipe.py's finished Muon recipe runs under ``source`` (<source>/recipe/seed_<n>) as this study's Muon
    recipe trials of the same seeds (Study.adopt), where the study has not finished them already (here or in
    ``records``). Refuses a run made with other settings, on another CPU or with the other allocator setting.
    Returns the seeds taken."""
    same = {k: v for k, v in base.items() if k not in ("optimizer", "averaging")}
    taken = []
    for seed in study.seeds:
        folder = trial_path(source, RECIPE_CONDITION, seed)
        done = [trial_path(root, REFERENCE, seed) / "summary.json" for root in (study.path, records) if root]
        if not (folder / "summary.json").is_file() or any(f.is_file() for f in done):
            continue
        summary = runs.read_summary(folder)
        here = {"cpu": runs.cpu_name(), "freed_memory_kept": freed_memory_kept()}
        there = {k: summary.get(k) for k in here}
        if there != here:
            raise UserError(f"{folder} ran with {there}, this run has {here}: its times would not pair with this "
                            "run's; leave --recipe-runs out (the Muon recipe is trained here)")
        made_with = {**same, "recipe": "muon", "seed": seed, "condition": RECIPE_CONDITION}
        if study.adopt(REFERENCE, seed, folder, made_with):
            taken.append(seed)
    return taken


def allocator_note(study_path: Path) -> str:
    """A caption's note where the study's runs differ in whether freed memory was kept (shared_utils/pytorch/
    memory.py: 1.3-1.6x faster steps), which makes their absolute seconds incomparable; empty where they agree."""
    summaries = [(o.trial.seed, o.summary) for o in StudyResult.load(study_path).outcomes if o.summary]
    without = sorted({seed for seed, s in summaries if not s.get("freed_memory_kept")})
    if not any(s.get("freed_memory_kept") for _, s in summaries) or not without:       # all alike
        return ""
    return (f". Seed(s) {', '.join(map(str, without))} ran without freed memory kept, the others with it: "
            "compare times by the paired ratio, not the seconds")


def main(argv=None):
    p = cli.parser(__doc__, epochs=MUON["epochs"], batch_size=MUON["batch_size"], seeds=True, quick=QUICK)
    cli.add_precision(p)
    cli.add_test_subset(p)
    p.add_argument("--conditions", nargs="+", default=None, metavar="NAME",
                   help="run only these conditions (the Muon recipe is always run: the drops are paired with it)")
    p.add_argument("--recipe-runs", type=Path, default=None, metavar="FOLDER",
                   help="take recipe.py's finished Muon recipe runs in FOLDER (runs/recipe_muon, or records of it) as "
                        "the Muon recipe's seeds instead of training them again (needs --resume)")
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    if args.recipe_runs is not None and not args.resume:
        p.error("--recipe-runs needs --resume (a run without it starts every trial afresh)")
    if args.recipe_runs is not None and not trial_path(args.recipe_runs, RECIPE_CONDITION, 0).parent.is_dir():
        p.error(f"--recipe-runs {args.recipe_runs}: no recipe.py runs there "
                f"(expected {args.recipe_runs}/recipe/seed_<n>)")
    if args.lr != p.get_default("lr"):
        p.error("--lr does not apply: each condition trains with the Muon recipe's or the anchor's own rates")
    if args.epochs < 2:
        p.error(f"--epochs must be at least 2 (one condition trains one epoch fewer), got {args.epochs:g}")
    grid = conditions(args.epochs, args.batch_size)
    if args.conditions:
        unknown = sorted(set(args.conditions) - set(grid))
        if unknown:
            p.error(f"unknown condition(s) {', '.join(map(repr, unknown))}; choose from {', '.join(map(repr, grid))}")
        grid = {name: o for name, o in grid.items() if name == REFERENCE or name in args.conditions}
    out = runs.root(__file__, out=args.out)
    if not args.report_only:
        settings = {**cli.data_settings(args), "val_size": 0}
        data.cifar10_from_settings(settings)         # no CIFAR-10 and no network: stop before training
        base = {"optimizer": "muon", "averaging": False, "epochs": args.epochs, "batch_size": args.batch_size,
                "precision": args.precision, **settings}
        study = Study("muon_ablation", trial, grid, args.seeds, out, base=base, resume=args.resume)
        if args.recipe_runs is not None:
            records = Path(args.records) / study.name if args.records else None
            taken = adopt_recipe_runs(study, args.recipe_runs, base, records)
            if taken and not args.quiet:
                print(f"[muon_ablation] the Muon recipe's seed(s) {taken} taken from {args.recipe_runs}", flush=True)
        study.run(**cli.study_backend(args)).raise_for_failures()
    elif args.records:
        save_records(out / "muon_ablation", Path(args.records) / "muon_ablation")
    table, text = table_from_folders(
        out / "muon_ablation", grid, reference=REFERENCE, same_weights=SAME_WEIGHTS, columns=COLUMNS,
        name="muon_ablation", drop_column=DROP, time_ratio=TIME_RATIO,
        caption="The Muon recipe with one change undone (the anchor's setting back); test accuracy with six views "
                "(last epoch), its paired drop against the Muon recipe, the seconds and the counted time over the Muon "
                "recipe's in the same seed, mean ± std [95% CI] over seeds" + allocator_note(out / "muon_ablation"))
    drops_figure(table, DROP, out / "muon_ablation" / "drops.png", xlabel="change undone",
                 title="Muon recipe ablation: accuracy lost when one change is undone",
                 budget=f"{args.epochs:g} epochs of 50,000 images" if args.limit_train is None
                 else f"{args.epochs:g} epochs of {args.limit_train:,} images")
    print(text)
    return table


if __name__ == "__main__":
    cli.run(main)
