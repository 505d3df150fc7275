"""Containers (Split, Dataset), the data folder, subsets and validation splits: what every loader shares."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared_utils.errors import UserError

ENV_VAR = "DL_DATA_DIR"


# --------------------------------------------------------------------------- containers
@dataclass
class Split:
    """One split: ``x`` (uint8 images or float32 features) and ``y`` (int64 labels)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index) -> "Split":
        return Split(self.x[index], self.y[index])


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    val: Split | None = None
    classes: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = ()   # per channel, on the [0, 1] pixel scale
    std: tuple[float, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalize(self, x: np.ndarray, dtype=np.float32) -> np.ndarray:
        """uint8 (N, C, H, W) -> ``dtype`` with the dataset's per-channel mean and std removed."""
        scale = np.asarray(1.0 / 255.0, dtype=dtype)
        mean = np.asarray(self.mean, dtype=dtype).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=dtype).reshape(1, -1, 1, 1)
        return (x.astype(dtype) * scale - mean) / std

    def arrays(self, split: str = "train", *, flatten: bool = False, dtype=np.float32):
        """``(x, y)`` of a split, normalised; ``flatten`` gives (N, C*H*W) rows for MLPs."""
        part = getattr(self, split)
        if part is None:
            raise UserError(f"{self.name} has no {split} split here: too few training examples to set a validation set aside; raise --limit-train (or drop it)")
        x = self.normalize(part.x, dtype)
        return (x.reshape(len(x), -1) if flatten else x), part.y


# --------------------------------------------------------------------------- locations
def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``--data-dir`` if given, else ``$DL_DATA_DIR``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path("data")


# --------------------------------------------------------------------------- subsets and splits
def subset(split: Split, n: int | None, *, mode: str = "first", seed: int = 0) -> Split:
    """The first ``n`` examples, a seeded random ``n`` (``mode="random"``), or a seeded random ``n`` with
    the classes as equal as ``n`` allows (``mode="stratified"``: 10 of each digit for n = 100), which a
    label budget needs so that a small one is not missing a class by chance."""
    if n is None or n >= len(split):
        return split
    if mode == "first":
        return split.take(slice(0, n))
    rng = np.random.default_rng(seed)
    if mode == "random":
        return split.take(np.sort(rng.permutation(len(split))[:n]))
    if mode == "stratified":
        classes = np.unique(split.y)
        shares = np.full(len(classes), n // len(classes))
        shares[rng.permutation(len(classes))[:n % len(classes)]] += 1     # the remainder to random classes
        picked = []
        for c, share in zip(classes, shares):
            members = np.flatnonzero(split.y == c)
            if share > len(members):
                raise UserError(f"a stratified subset of {n} needs {share} examples of class {c}; "
                                f"there are {len(members)}")
            picked.append(rng.permutation(members)[:share])
        return split.take(np.sort(np.concatenate(picked)))
    raise ValueError(f"mode must be 'first', 'random' or 'stratified', got {mode!r}")


def train_val_split(split: Split, val_size: int | float, *, seed: int = 0) -> tuple[Split, Split | None]:
    """Carve a validation set out of ``split`` with a seeded permutation (int = count, float = fraction)."""
    if not val_size:
        return split, None
    n_val = int(round(val_size * len(split))) if isinstance(val_size, float) else int(val_size)
    if not 0 < n_val < len(split):
        raise UserError(f"validation size {val_size} does not fit a training set of {len(split)}")
    order = np.random.default_rng(seed).permutation(len(split))
    return split.take(np.sort(order[n_val:])), split.take(np.sort(order[:n_val]))


