"""What the section 4 scripts share: the CIFAR-10 data settings every trial carries, loaders on the
device, and one train-and-test call.

A study trial is a function of a plain configuration dict (shared_utils.study), so the data settings
travel inside it: ``cli.data_settings`` copies them from the command line, :func:`load_cifar` reads
them back (``data.cached``: once per process, so the main process checks the data is there before any
trial and a worker that runs several trials loads CIFAR-10 once).
"""
from __future__ import annotations

from typing import Any, Mapping

from section4_transfer import figures
from shared_utils import cli, data, runs
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit, load_best
from shared_utils.pytorch.pipeline import AUGMENTATIONS, loaders
from shared_utils.pytorch.pipeline import resize as resize_to
from shared_utils.runs import RunDir, read_metrics
from shared_utils.study import Study

QUICK = {"epochs": 1, "limit_train": 384, "test_subset": 256, "val_size": 128}   # seconds, for smoke tests

def add_cifar_flags(p, *, val_size: int = 5000) -> None:
    p.add_argument("--val-size", type=cli.positive_int, default=val_size,
                   help="images held out for validation (from the --limit-train subset when one is given)")
    cli.add_test_subset(p)


def study_parser(doc: str | None, hp: Mapping[str, Any], *, quick: Mapping[str, Any] = QUICK, val_size: int = 5000):
    """The command line of a section 4 study: the common flags with the script's hyper-parameter block as
    defaults, --seeds, the CIFAR-10 subset flags and the study runner's flags."""
    p = cli.parser(doc, epochs=hp["epochs"], batch_size=hp["batch_size"], lr=hp["lr"], seeds=True, quick=dict(quick))
    add_cifar_flags(p, val_size=val_size)
    cli.add_study_flags(p)
    return p


def cifar_study(script_file, name: str, trial, conditions: Mapping[str, Mapping[str, Any]], args, hp, **base) -> Study:
    """The Study for a section 4 script, after the checks that must stop it before any trial: an absent
    accelerator, a bad condition, no CIFAR-10 and no network."""
    study = Study(name, trial, conditions, args.seeds, runs.root(script_file, out=args.out),
                  base={**cli.hyperparameters(hp, args), **base, **cli.data_settings(args)}, resume=args.resume)
    load_cifar(study.base)
    return study


def load_cifar(config: Mapping[str, Any]) -> data.Dataset:
    """CIFAR-10 as the settings ask (``data.cifar10_from_settings``): a seeded random training subset plus
    the validation images carved from it, the same images for every condition and seed of a study."""
    return data.cifar10_from_settings(config)


def make_loaders(ds: data.Dataset, config: Mapping[str, Any], device, augment_names=(), seed: int = 0,
                 resize: int | None = None):
    """Train (shuffled with ``seed``, augmented), validation and test loaders, built per trial so that
    every condition draws its own shuffles and augmentations from its own seed."""
    return loaders(ds, batch_size=config["batch_size"], seed=seed, device=device, eval_batch_size=256,
                   augment=[AUGMENTATIONS[name]() for name in augment_names],
                   eval_augment=[resize_to(resize)] if resize else [])


def gap_points(result) -> dict[str, list[float]]:
    """Per condition, each seed's training minus validation accuracy at the last epoch (points), from the
    summaries in the study's folder."""
    return {c: [100 * (s["final_train_acc"] - s["final_val_acc"]) for s in per] for c, per in result.summaries().items()}


def train_and_test(model, loaders, cfg: TrainConfig, run: RunDir, device, *, config: Mapping[str, Any], title: str,
                   on_backward=None, **summary_extra) -> dict:
    """fit() into ``run`` (resuming if the trial says so); score the best checkpoint on the test split;
    draw the dashboard (loss, accuracy, learning rate, throughput); return the summary."""
    train, val, test = loaders
    fit(model, train, val, cfg, device=device, run=run, quiet=bool(config.get("quiet", True)), desc=title,
        on_backward=on_backward)   # resumes when the trial's RunDir was opened with resume=True
    load_best(model, run, device)
    scores = evaluate(model, test, device)
    figures.training_dashboard(run.path, title=title)     # its first two panels are the learning curves
    seconds = read_metrics(run.path)["seconds"] if (run / "metrics.csv").exists() else [0.0]
    return run.summary(test_acc=scores["acc"], test_loss=scores["loss"],
                       seconds_per_epoch=float(sum(seconds) / max(1, len(seconds))), **summary_extra)
