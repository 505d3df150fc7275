"""A small CIFAR-10 copy for a machine that gets only what a command carries (benchmarks/gpu_check.sh): the
first --train images of a seeded shuffle of the training set (classes balanced to within one image) and the
first --test test images, written as a `cifar-10-batches-py` folder in CIFAR's own batch format (five
training batches and a test batch), so every loader of the project reads it with DL_DATA_DIR=<--out>.
The defaults give 15,000 + 2,000 images, 52 MB.

    python benchmarks/make_cifar_subset.py --out benchmarks/runs/gpu_subset
"""
from __future__ import annotations

import pickle

import numpy as np

from shared_utils import cli, data, runs
from shared_utils.atomic import atomic_write_bytes
from shared_utils.data.cifar10_batches import CIFAR10_BATCHES
from shared_utils.errors import UserError


def balanced_indices(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices, the classes taking turns (each class's images in a random order)."""
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    depth = -(-count // len(per_class))
    if depth > min(len(p) for p in per_class):
        raise UserError(f"--train/--test {count} asks for more images than a balanced subset of this set holds")
    return np.stack([p[:depth] for p in per_class], axis=1).reshape(-1)[:count]


def batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR's batch layout: a dict with uint8 'data' (N, 3072) and int 'labels', pickled with protocol 4
    (protocol 2, the originals', would store the bytes as text, 1.5x their size)."""
    return pickle.dumps({b"data": np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.uint8),
                         b"labels": [int(v) for v in labels]}, protocol=4)


def main(argv=None):
    p = cli.parser(__doc__, trains=False)
    p.add_argument("--train", type=cli.positive_int, default=15000, help="training images (split into 5 batches)")
    p.add_argument("--test", type=cli.positive_int, default=2000, help="test images")
    args = cli.parse(p, argv)
    if args.train < len(CIFAR10_BATCHES) - 1:
        raise UserError(f"--train {args.train}: the five training batches need at least 5 images")
    ds = data.cifar10_from_settings({**cli.data_settings(args), "limit_train": None, "val_size": 0})
    rng = np.random.default_rng(args.seed)
    train = balanced_indices(ds.train.y, args.train, rng)
    test = balanced_indices(ds.test.y, args.test, rng)
    folder = runs.root(__file__, "gpu_subset", args.out) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in zip(CIFAR10_BATCHES[:5], np.array_split(train, 5)):
        atomic_write_bytes(folder / name, batch_bytes(ds.train.x[part], ds.train.y[part]))
    atomic_write_bytes(folder / CIFAR10_BATCHES[5], batch_bytes(ds.test.x[test], ds.test.y[test]))
    size = sum(f.stat().st_size for f in folder.iterdir())
    print(f"{len(train):,} training and {len(test):,} test images, {size / 1e6:.1f} MB -> {folder.parent} "
          f"(use it with DL_DATA_DIR={folder.parent})")
    return folder


if __name__ == "__main__":
    cli.run(main)
