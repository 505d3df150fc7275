"""Training the section 3 CNN on MNIST: the one recipe every section 3 script shares."""
from __future__ import annotations

import functools

import numpy as np

from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.optim import Adam, CosineAnnealingLR
from section2_optimization.trainer import evaluate, fit
from section3_cnn.augment import random_shift
from section3_cnn.model import architecture, build_cnn, load_cnn
from shared_utils import data, plots
from shared_utils.runs import RunDir


def load_mnist(args) -> data.Dataset:
    """Full MNIST (or --limit-train of it) with a validation split of 5,000 (1/6 of a small subset)."""
    data_dir = str(args.data_dir) if args.data_dir else None
    return data.cached("mnist", data_dir, limit=args.limit_train, val_size=min(5000, (args.limit_train or 60000) // 6),
                       seed=args.seed, quiet=args.quiet)


def train_cnn(args, ds: data.Dataset, run: RunDir, *, seed: int, pool: str = "max",
              channels: tuple[int, int] = (8, 16), hidden: int = 128, dropout: float = 0.0, shift: int = 0,
              threads: int = 1, label_smoothing: float = 0.0) -> dict:
    """Adam with a per-step cosine decay, optional random shifts of up to ``shift`` pixels; the best
    validation checkpoint is scored on the test set. ``threads`` splits each batch across that many threads
    (section 2's DataParallel)."""
    train, val, test = (ds.arrays(s) for s in ("train", "val", "test"))   # float32 (N, 1, 28, 28)
    arch = dict(pool=pool, channels=tuple(channels), hidden=hidden, kernel=3, dropout=dropout)
    model = build_cnn(**arch, seed=seed)
    optimizer = Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * -(-len(train[1]) // args.batch_size)
    loss_fn = (functools.partial(softmax_cross_entropy, label_smoothing=label_smoothing) if label_smoothing
               else softmax_cross_entropy)
    history = fit(model, loss_fn, optimizer, train, val, epochs=args.epochs,
                  batch_size=args.batch_size, seed=seed, run=run, quiet=args.quiet,
                  scheduler=CosineAnnealingLR(optimizer, T_max=steps), schedule_per="batch",
                  checkpoint_extra=architecture(**arch), desc=f"NumPy CNN ({pool} pool, seed {seed})",
                  augment=(lambda xb, rng: random_shift(xb, rng, shift)) if shift else None, threads=threads)
    best = load_cnn(run / "best.npz")
    test_loss, test_acc = evaluate(best, softmax_cross_entropy, *test)
    plots.learning_curves(run.path, title=f"NumPy CNN on MNIST, {pool} pooling ({model.num_parameters():,} parameters)")
    return run.summary(test_acc=test_acc, test_loss=test_loss, best_epoch=history.best_epoch, seed=seed,
                       pool=pool, parameters=model.num_parameters(), architecture=repr(model),
                       seconds_per_epoch=float(np.median(history.column("seconds"))))
