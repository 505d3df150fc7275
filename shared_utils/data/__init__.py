"""Real datasets as NumPy arrays, plus the seeded synthetic tasks several sections need.

    ds = data.load("mnist", args.data_dir, limit=args.limit_train, val_size=5000, seed=args.seed)
    x = ds.normalize(ds.train.x)        # float32 (N, 1, 28, 28), zero mean / unit std per channel
    ds.train.y                          # int64 (N,)

Images are uint8 in (N, C, H, W) layout; labels are int64. Where the files live:
``--data-dir``, else ``$DL_DATA_DIR``, else ``./data``. Missing files are downloaded
from the official mirrors and checked against their published checksums; offline,
a :class:`UserError` names the folder and the files expected. Files already on disk
are verified too (checksums for MNIST, structure for CIFAR-10), so a truncated or
corrupt file is reported, never silently used.

The package: ``core`` (Split, Dataset, data folder, subsets, validation splits), ``fetch``
(mirrors, checksums), ``mnist_idx``, ``cifar10_batches``, ``sklearn_digits``, ``synthetic``
(seeded toy tasks). PyTorch views of a Dataset live in ``shared_utils.pytorch.pipeline``.
"""
from __future__ import annotations

import functools
import os
from typing import Callable

from shared_utils.data import cifar10_batches, fetch, mnist_idx, sklearn_digits
from shared_utils.data.cifar10_batches import (CIFAR10_BATCHES, CIFAR10_CLASSES, CIFAR10_MD5, CIFAR10_MEAN,
                                               CIFAR10_STD, CIFAR10_URL, read_cifar_batch)
from shared_utils.data.core import (ENV_VAR, Dataset, Split, resolve_data_dir, subset,
                                    train_val_split)
from shared_utils.data.fetch import download, file_digest
from shared_utils.data.mnist_idx import MNIST_FILES, MNIST_MEAN, MNIST_MIRRORS, MNIST_STD, parse_idx
from shared_utils.data.synthetic import (REGRESSION_FORMULAS, REGRESSION_TARGETS, circles, moons,
                                         nonlinear_tabular, regression_1d, spirals)
from shared_utils.errors import UserError

__all__ = [  # the names a script uses as data.<name>
    "Dataset", "Split", "ENV_VAR", "REGISTRY", "load", "cached", "cifar10_from_settings", "mnist_from_settings",
    "MNIST_VAL_SIZE", "mnist", "cifar10", "digits", "subset",
    "train_val_split", "resolve_data_dir", "download", "file_digest", "fetch", "parse_idx", "read_cifar_batch",
    "MNIST_FILES", "MNIST_MEAN", "MNIST_STD", "MNIST_MIRRORS", "CIFAR10_BATCHES", "CIFAR10_CLASSES", "CIFAR10_MD5",
    "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_URL", "moons", "circles", "spirals", "nonlinear_tabular",
    "regression_1d", "REGRESSION_FORMULAS", "REGRESSION_TARGETS",
]

REGISTRY: dict[str, Callable] = {
    "mnist": mnist_idx.load_arrays,
    "cifar10": cifar10_batches.load_arrays,
    "digits": sklearn_digits.load_digits_arrays,
}


def load(name: str, data_dir: str | os.PathLike | None = None, *, limit: int | None = None,
         limit_test: int | None = None, subset_mode: str = "first", val_size: int | float = 0,
         seed: int = 0, download_ok: bool = True, quiet: bool = False) -> Dataset:
    """Load a registered dataset; ``limit`` trims train (before the validation split)."""
    if name not in REGISTRY:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    train, test, classes, mean, std = REGISTRY[name](resolve_data_dir(data_dir),
                                                     download_ok=download_ok, quiet=quiet)
    train = subset(train, limit, mode=subset_mode, seed=seed)
    test = subset(test, limit_test, mode=subset_mode, seed=seed)
    train, val = train_val_split(train, val_size, seed=seed)
    return Dataset(name, train, test, val, classes, tuple(mean), tuple(std))


def cifar10_from_settings(config) -> Dataset:
    """CIFAR-10 as a study trial's data settings ask (``limit_train``, ``val_size``, ``test_subset``,
    ``data_dir``, ``data_seed``; see ``cli.data_settings``): a seeded random training subset plus the
    validation images carved from it, the same images for every condition and seed of a study (the subset
    follows ``data_seed``, i.e. --seed). Cached per process like :func:`cached`."""
    val_size, limit = config.get("val_size", 0) or 0, config.get("limit_train")
    return cached("cifar10", config.get("data_dir"), limit=limit, limit_test=config.get("test_subset"),
                  subset_mode="random", val_size=val_size, seed=config.get("data_seed", config.get("seed", 0)),
                  quiet=bool(config.get("quiet")))


MNIST_VAL_SIZE = 5000   # the most validation images carved from MNIST's 60,000 training images


def mnist_from_settings(config, *, subset_mode: str = "first", limit_test: int | None = None) -> Dataset:
    """MNIST with the project's one validation rule: the validation images come out of the training
    images (after --limit-train trims them): a sixth of them, at most 5,000, picked with ``data_seed``
    (--seed), the same images for every trial of a study. ``config`` holds ``data_dir``, ``limit_train``,
    ``data_seed`` and ``quiet`` (``cli.data_settings``). Cached per process like :func:`cached`."""
    limit = config.get("limit_train")
    if limit is not None and limit < 6:     # refused here, where every script loads its data before any trial
        raise UserError(f"--limit-train {limit} leaves no validation images (a sixth of the training images is "
                        "held out); use at least 6")
    return cached("mnist", config.get("data_dir"), limit=limit, limit_test=limit_test, subset_mode=subset_mode,
                  val_size=min(MNIST_VAL_SIZE, (limit or 60000) // 6), seed=config.get("data_seed", 0),
                  quiet=bool(config.get("quiet")))


def mnist(data_dir=None, **kwargs) -> Dataset:
    return load("mnist", data_dir, **kwargs)


def cifar10(data_dir=None, **kwargs) -> Dataset:
    return load("cifar10", data_dir, **kwargs)


def digits(**kwargs) -> Dataset:
    return load("digits", None, **kwargs)




@functools.lru_cache(maxsize=4)
def cached(name: str, data_dir: str | None = None, **kwargs) -> Dataset:
    """:func:`load`, remembered per process for the same arguments: a study script loads its data once in
    the main process (so a missing dataset stops it before any trial) and its serial trials, or the
    trials a pool worker runs one after another, reuse that copy. Treat the arrays as read-only."""
    return load(name, data_dir, **kwargs)
