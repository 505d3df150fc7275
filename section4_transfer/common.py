"""What the section 4 scripts share: CIFAR-10 loaders on the device, one train-and-test call."""
from __future__ import annotations

import torch

from shared_utils import cli, data, plots
from shared_utils.runs import RunDir
from shared_utils.tensor_pipeline import AUGMENTATIONS, TensorLoader
from shared_utils.training import TrainConfig, evaluate, fit, load_best


def add_cifar_flags(p, *, val_size: int = 5000) -> None:
    p.add_argument("--train-subset", type=cli.positive_int, default=None,
                   help="train on a seeded random subset of this many images (CPU budgets)")
    p.add_argument("--val-size", type=cli.positive_int, default=val_size, help="images held out for validation")
    p.add_argument("--test-subset", type=cli.positive_int, default=None, help="score on this many test images")
    p.add_argument("--resume", action="store_true", help="continue each run from its last.pt")


def load_cifar(args) -> data.Dataset:
    limit = args.train_subset + args.val_size if args.train_subset else args.limit_train
    return data.cifar10(args.data_dir, limit=limit, limit_test=args.test_subset, subset_mode="random",
                        val_size=args.val_size, seed=args.seed, quiet=args.quiet)


def make_loaders(ds: data.Dataset, args, device, augment_names=(), seed: int | None = None, resize: int | None = None):
    augment = [AUGMENTATIONS[name]() for name in augment_names]
    if resize:
        augment.append(resize_to(resize))
    seed = args.seed if seed is None else seed
    common = dict(mean=ds.mean, std=ds.std, device=device)
    train = TensorLoader(ds.train.x, ds.train.y, batch_size=args.batch_size, augment=augment, seed=seed, **common)
    evaluation = [resize_to(resize)] if resize else []
    val = TensorLoader(ds.val.x, ds.val.y, batch_size=256, shuffle=False, augment=evaluation, **common)
    test = TensorLoader(ds.test.x, ds.test.y, batch_size=256, shuffle=False, augment=evaluation, **common)
    return train, val, test


def resize_to(size: int):
    def apply(x, gen):
        return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    apply.__name__ = f"resize({size})"
    return apply


def train_and_test(model, loaders, cfg: TrainConfig, run: RunDir, device, *, args, title: str,
                   on_backward=None, **summary_extra) -> dict:
    """fit() into ``run``; score the best checkpoint on the test split; draw the dashboard."""
    train, val, test = loaders
    fit(model, train, val, cfg, device=device, run=run, quiet=args.quiet, desc=title, on_backward=on_backward,
        resume=getattr(args, "resume", False))
    load_best(model, run, device)
    test_loss, test_acc = evaluate(model, test, device)
    plots.training_dashboard(run.path, title=title)
    plots.learning_curves(run.path, title=title)
    return run.summary(test_acc=test_acc, test_loss=test_loss, **summary_extra)
