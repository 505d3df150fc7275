"""CIFAR-10 as the rotation studies of this project split it: the held-out validation images (the same for every
trial) and the class tasks that the cross-task control trains and transfers between."""
from __future__ import annotations

import numpy as np

from shared_utils import data

TASKS = {"cifar10": (0, 10), "classes 0-4": (0, 5), "classes 5-9": (5, 10)}   # task -> its classes [low, high)


def load(config: dict) -> data.Dataset:
    """CIFAR-10 with 5,000 (--val-size) training images held out, the same split for every trial."""
    return data.cached("cifar10", config.get("data_dir"), limit=config.get("limit_train"),
                       limit_test=config.get("test_subset"), subset_mode="random", val_size=config["val_size"],
                       seed=config.get("data_seed", 0), quiet=bool(config.get("quiet")))


def task_splits(ds: data.Dataset, task: str) -> tuple[data.Split, data.Split, data.Split]:
    """Train, validation and test images of a task's classes, labels renumbered from 0."""
    low, high = TASKS[task]

    def part(split):
        keep = np.flatnonzero((split.y >= low) & (split.y < high))
        return data.Split(split.x[keep], split.y[keep] - low)
    return part(ds.train), part(ds.val), part(ds.test)
