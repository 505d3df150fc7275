"""The anchor: the fastest published CIFAR-10 recipe, airbench94 (Jordan 2024, "94% on CIFAR-10 in 3.29
Seconds on a Single GPU", arXiv:2404.00498: 94.01% mean accuracy in 3.83 s on an A100, 1.97M parameters,
0.36 PFLOPs), written here from the paper and its description so that projects/cifar_best can be measured
against it on the same machine, data and precision.

What the recipe is (its numbers: AIRBENCH94 in shared_utils/pytorch/airbench.py, the trainer it shares with
projects/cifar_best's Muon recipe):
  network    a 2x2 patch-whitening convolution (24 filters: the training patches' eigenvectors scaled to unit
             variance and their negations; weights frozen, bias trained for the first 3 epochs), GELU, then
             three stages of conv3x3 -> max pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU of widths 64, 256,
             256, a 3x3 max pool, a linear layer without bias and logits scaled by 1/9. Convolutions start as
             identity in their first C_in filters (dirac); BatchNorm has eps 1e-12, running-average momentum
             0.6 (PyTorch's 0.4) and fixed scales, only its shifts train. (shared_utils FastNet with these options.)
  data       the training images flipped at random once, then all flipped together every other epoch
             (alternating flip), and translated up to 2 pixels (reflect padding) afresh every epoch.
  training   Nesterov SGD, batch 1024, 9.9 epochs (ceil(48 x 9.9) = 476 steps), the summed label-smoothed
             (0.2) cross-entropy; learning rate 11.5 and weight decay 0.0153 per 1024 examples, decoupled from
             the momentum (0.85) as in the paper; BN shifts at 64x the learning rate; a triangular schedule
             (0.2 -> 1 at 23% of the steps -> 0.07). From epoch 3, every 5 steps the weights are replaced by
             an exponential average of themselves (decay 0.95^5 x (step / steps)^3: Lookahead-like).
  evaluation six views: the image and its mirror, each also shifted one pixel up-left and down-right
             (reflect padding), averaged as 1/2 (unshifted pair) + 1/4 + 1/4 (the shifted pairs).
Its time is counted as the paper counts it (counted_seconds): the whitening set-up, the training steps and the
final test-time augmented evaluation, not the per-epoch test scores (which we log for the curve).

Precision as projects/cifar_best: bfloat16 autocast on a CPU where it is faster, float16 autocast on CUDA,
float32 elsewhere (--precision fp32 forces it); channels-last memory in all of them.

    python benchmarks/cifar_anchor.py --seeds 0                  # the anchor alone
    python benchmarks/cifar_anchor.py --seeds 0 1 2 --with-recipe   # then cifar_best's recipe, and the table
    python benchmarks/cifar_anchor.py --seeds 0 1 2 --with-recipe --crop-size 24 --crop-epochs 4   # its crop variant

--with-recipe runs `projects/cifar_best/recipe.py` (its default, the Muon recipe) with the same seeds and
precision after the anchor, in a fresh process, and writes comparison.md: accuracy (mean and 95% CI), counted
and wall seconds per run, training seconds per epoch and the ratios of the times, and comparison_by_seed.md: each
seed's pair of runs, its accuracy difference and time ratio, and their means with 95% CIs (a crop variant's
tables are comparison_recipe_muon_crop24x4.md and its _by_seed, beside the recipe's). Runs go to
benchmarks/runs/cifar_anchor/; --resume continues an interrupted run from its last finished epoch (and keeps
finished runs, so a later --with-recipe adds the recipe beside an anchor already measured).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from shared_utils import cli, data, runs, stats
from shared_utils.errors import UserError
from shared_utils.pytorch.airbench import AIRBENCH94, build_network, muon_study_name, train
from shared_utils.pytorch.models import FastNet
from shared_utils.study import Study, StudyResult

REPO = Path(__file__).resolve().parents[1]

HP = AIRBENCH94             # the recipe's numbers: shared_utils/pytorch/airbench.py, beside its Muon successor's
PAPER = {"parameters": 1.97e6, "petaflops": 0.36, "accuracy": 0.9401, "a100_seconds": 3.83}
QUICK = {"epochs": 1, "limit_train": 1024, "test_subset": 500, "batch_size": 512}   # two steps


def build_anchor() -> FastNet:
    """airbench94's network: FastNet 64/256/256 with its GELU after the stem, dirac starts, fixed BN scales."""
    return build_network(HP)


def trial(config: dict) -> dict:
    """One anchor run (shared_utils.pytorch.airbench.train with airbench94's settings)."""
    return train(config, HP, __file__)


def recipe_study(out: Path, args) -> Path:
    """Where recipe.py puts the recipe's study (its crop variant has a folder of its own)."""
    return out / "cifar_best" / muon_study_name(args.crop_size, args.crop_epochs)


def run_recipe(args, out: Path) -> None:
    """projects/cifar_best/recipe.py with the same seeds, precision and data, in a fresh process."""
    cmd = [sys.executable, str(REPO / "projects" / "cifar_best" / "recipe.py"), "--seeds", *map(str, args.seeds),
           "--precision", args.precision, "--out", str(out / "cifar_best"), "--quiet"]
    for flag, value in (("--data-dir", args.data_dir), ("--limit-train", args.limit_train),
                        ("--test-subset", args.test_subset), ("--device", args.device),
                        ("--crop-size", args.crop_size), ("--crop-epochs", args.crop_epochs)):
        if value is not None:
            cmd += [flag, str(value)]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--resume"] if args.resume else []
    cmd += ["--report-only"] if args.report_only else []          # redraw only: never train here
    if args.records:                 # laid out as --out is: the anchor's study beside cifar_best/<recipe study>
        cmd += ["--records", str(Path(args.records) / "cifar_best")]
    if subprocess.run(cmd).returncode != 0:
        raise UserError(f"cifar_best's recipe stopped (command: {' '.join(cmd)}); fix what it said and rerun "
                        "with --resume")


def settings_of(summary: dict) -> str:
    """How a run was timed: its memory layout and how its CPU memory was handed out (freed memory kept for the
    next step, shared_utils.pytorch.memory; else fresh 2 MB or 4 kB pages each step). Runs from before these
    were recorded were NCHW on fresh 4 kB pages."""
    layout = "channels-last" if summary.get("memory_format") == "channels_last" else "NCHW"
    if summary.get("freed_memory_kept"):
        return f"{layout}, memory kept"
    return f"{layout}, {'2 MB' if summary.get('huge_pages') else '4 kB'} pages"


def by_seed(result: StudyResult) -> dict[int, tuple[dict, Path]]:
    """{seed: (summary, run folder)} of a one-condition study's finished runs."""
    done = {}
    for seed in result.seeds:
        summaries, paths = result.summaries([seed]), result.run_paths([seed])
        for condition, found in summaries.items():
            done[seed] = (found[0], paths[condition][0])
    if not done:
        raise UserError(f"no finished run in {result.path}; run this command again with --resume")
    return done


def counted_seconds(summary: dict) -> float:
    # runs made before the trainer was shared called the counted time anchor_seconds
    return summary.get("counted_seconds", summary.get("anchor_seconds", summary["wall_time_s"]))


def wall_seconds(summary: dict) -> float:
    return summary["wall_time_s"]


def device_of(summary: dict) -> str:
    """What a run trained on: the GPU's name on CUDA, else the CPU's (runs from before the device was recorded
    were all on a CPU)."""
    device = summary.get("device", "cpu")
    return summary.get("cpu", "?") if device == "cpu" else device


def comparison_stem(recipe_name: str) -> str:
    """The tables' file name: comparison(.md) for the default recipe, comparison_<its study> for a variant
    (comparison_recipe_muon_crop24x4), so a variant's run never overwrites the recipe's tables beside it."""
    return "comparison" if recipe_name == muon_study_name(None, None) else f"comparison_{recipe_name}"


def comparison(anchor: StudyResult, recipe: StudyResult, out: Path) -> list[list[str]]:
    """Two tables, named by comparison_stem (comparison.md for the default recipe). comparison.md: accuracy
    (mean and 95% CI), seconds counted as the papers count them (set-up, training steps, final TTA) and wall
    seconds per run, training seconds per epoch, and the recipe's times as
    multiples of the anchor's. comparison_by_seed.md: each seed's pair (the two runs of a seed go one after the
    other, so they share the machine's state of the day), with the accuracy difference and the time ratio per
    seed and their means with 95% CIs over the seeds that both have."""
    rows, found, stem = [], {}, comparison_stem(recipe.name)
    for name, result in (("anchor (airbench94)", anchor), ("cifar_best recipe", recipe)):
        runs_of = by_seed(result)
        found[name] = done = {seed: summary for seed, (summary, _) in runs_of.items()}
        per_epoch = [float(np.median(runs.read_metrics(path)["seconds"])) for _, path in runs_of.values()]
        acc = [100 * s["test_acc"] for s in done.values()]
        first = next(iter(done.values()))
        counted, wall = ([measure(s) for s in done.values()] for measure in (counted_seconds, wall_seconds))
        rows.append([name, str(len(done)), stats.ci_cell(acc), f"{np.mean(counted):,.0f}", f"{np.mean(wall):,.0f}",
                     f"{np.median(per_epoch):.1f}",
                     first.get("precision", "?"), device_of(first)])
    a, r = found["anchor (airbench94)"], found["cifar_best recipe"]
    both = sorted(set(a) & set(r))                 # times compare only on the seeds both sides have run
    ratios = [sum(measure(r[k]) for k in both) / sum(measure(a[k]) for k in both) if both else float("nan")
              for measure in (counted_seconds, wall_seconds)]
    rows.append([f"recipe / anchor (seeds {', '.join(map(str, both))})", "", "", f"{ratios[0]:.2f}x",
                 f"{ratios[1]:.2f}x", "", "", ""])
    stats.write_table(["run", "seeds", "test accuracy % (mean ± 95% CI)", "counted s per run",
                       "wall s per run", "train s per epoch (median)", "precision", "device"], rows, out / stem,
                      caption=f"cifar_best ({recipe.name}) against the anchor, one after the other on this machine "
                              "(goal: at least the anchor's accuracy in at most 0.8x its time). Counted: set-up + "
                              "training steps + final test-time augmentation, as the papers count; wall: the whole run, "
                              "with the per-epoch one-view test scores and data loading")
    paired, diffs, time_ratios = [], [], []
    for seed in both:
        diff = 100 * (r[seed]["test_acc"] - a[seed]["test_acc"])
        ratio = counted_seconds(r[seed]) / counted_seconds(a[seed])
        diffs.append(diff)
        time_ratios.append(ratio)
        paired.append([str(seed), f"{100 * a[seed]['test_acc']:.2f}", f"{100 * r[seed]['test_acc']:.2f}",
                       f"{diff:+.2f}", f"{counted_seconds(a[seed]):,.0f}", f"{counted_seconds(r[seed]):,.0f}",
                       f"{ratio:.3f}", f"{settings_of(a[seed])} / {settings_of(r[seed])}"])
    if paired:
        paired.append(["mean (95% CI)", "", "", stats.ci_cell(diffs), "", "", stats.ci_cell(time_ratios, digits=3), ""])
        stats.write_table(["seed", "anchor %", "recipe %", "recipe - anchor (points)", "anchor counted s",
                           "recipe counted s", "recipe / anchor (counted s)", "timed with (anchor / recipe)"],
                          paired, out / f"{stem}_by_seed",
                          caption="Each seed's pair. A ratio compares two runs made one after the other; a VM "
                                  "that changes speed between them moves it, so read it beside the step-time "
                                  "ratio of benchmarks/cifar_step_ratio.py")
    return rows + paired


def main(argv=None):
    p = cli.parser(__doc__, seeds=True, quick=QUICK, trains=False)
    p.add_argument("--epochs", type=cli.positive_float, default=HP["epochs"],
                   help="passes over the training set (fractions allowed: the paper's 9.9)")
    p.add_argument("--batch-size", type=cli.positive_int, default=HP["batch_size"], help="examples per update")
    cli.add_precision(p)
    cli.add_test_subset(p)
    p.add_argument("--with-recipe", action="store_true",
                   help="then run projects/cifar_best/recipe.py with the same seeds and precision, and compare")
    p.add_argument("--crop-size", type=cli.bounded_int(10, 31, " pixels"), default=None,
                   help="with --with-recipe: the recipe's first --crop-epochs on crops of this side (recipe.py's flag)")
    p.add_argument("--crop-epochs", type=cli.positive_int, default=None, help="with --crop-size (recipe.py's flag)")
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    if (args.crop_size or args.crop_epochs) and not (args.with_recipe and args.crop_size and args.crop_epochs):
        p.error("--crop-size and --crop-epochs go together, with --with-recipe (they choose the recipe's variant)")
    settings = {**cli.data_settings(args), "val_size": 0}
    data.cifar10_from_settings(settings)            # no CIFAR-10 and no network: stop before training
    out = runs.root(__file__, "cifar_anchor", args.out)
    if args.records:                 # kept as --out lays the runs out, so --report-only --out RECORDS reads them
        args.records = str(Path(args.records) / "cifar_anchor")
    study = Study("anchor", trial, {"airbench94": {}}, args.seeds, out,
                  base={**settings, "epochs": args.epochs, "batch_size": args.batch_size, "precision": args.precision},
                  resume=args.resume)
    result = study.run_or_load(args)
    values = result.values("test_acc", 100)
    print(f"anchor test accuracy (six views): {stats.summarize(values['airbench94'])}")
    result.finish()
    if args.with_recipe:
        run_recipe(args, out)
        recipe = StudyResult.load(recipe_study(out, args))
        for row in comparison(result, recipe, out):
            print(" | ".join(row))
        print(f"-> {out / comparison_stem(recipe.name)}.md")
    return values


if __name__ == "__main__":
    cli.run(main)
