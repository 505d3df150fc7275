"""Trial functions for the study-runner tests: top level, so pool and Ray workers import them by name.

Run as a script it runs a small study (used to kill a study midway and start it again)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from shared_utils import data, runs


def numpy_trial(config: dict) -> dict:
    """Softmax regression on the digits with the NumPy layer library; 'fail' plants an error."""
    from section2_optimization import layers
    from section2_optimization.losses import softmax_cross_entropy
    from section2_optimization.optim import SGD
    from section2_optimization.trainer import evaluate, fit

    run = runs.RunDir.for_trial(__file__, config)
    with open(run / "invocations.log", "a") as f:     # how often the runner called this trial
        f.write(f"{os.getpid()}\n")
    if config["fail"]:
        raise RuntimeError("planted failure")
    time.sleep(config["sleep"])
    ds = data.digits(val_size=300, seed=0)
    train, val = ds.arrays("train", flatten=True), ds.arrays("val", flatten=True)
    model = layers.mlp([64, config["hidden"], 10], activation="relu", seed=config["seed"])
    fit(model, softmax_cross_entropy, SGD(model.parameters(), lr=config["lr"], momentum=0.9), train, val,
        epochs=config["epochs"], batch_size=32, seed=config["seed"], run=run)
    _, val_acc = evaluate(model, softmax_cross_entropy, *val)
    return run.summary(val_acc_model=val_acc, checksum=float(np.sum([np.abs(v).sum() for v in
                                                                        model.state_dict().values()])))


BASE = {"epochs": 2, "lr": 0.05, "hidden": 32, "fail": False, "sleep": 0.0}


def logging_trial(config: dict) -> dict:
    """Appends '<condition> <seed>' to config['log'] when it starts: the order the runner started trials in."""
    with open(config["log"], "a") as f:
        f.write(f"{config['condition']} {config['seed']}\n")
    return {"size": config["size"]}


def torch_trial(config: dict) -> dict:
    """A tiny torch MLP on the digits through the engine (resumable: for successive halving)."""
    import torch

    from shared_utils.pytorch.engine import TrainConfig, fit
    from shared_utils.pytorch.models import MLP
    from shared_utils.pytorch.pipeline import TensorLoader

    ds = data.digits(val_size=300, seed=0)
    run = runs.RunDir.for_trial(__file__, config)
    torch.manual_seed(config["seed"])
    model = MLP(hidden=(config["hidden"],), in_features=64, classes=10)
    kw = dict(mean=ds.mean, std=ds.std)
    train = TensorLoader(ds.train.x, ds.train.y, batch_size=64, seed=config["seed"], **kw)
    val = TensorLoader(ds.val.x, ds.val.y, batch_size=256, shuffle=False, **kw)
    cfg = TrainConfig(epochs=config["epochs"], lr=config["lr"], optimizer="sgd", weight_decay=0, schedule="none")
    fit(model, train, val, cfg, device=torch.device("cpu"), run=run)   # resumes if the RunDir says so
    return run.summary()


def killed_study(out: Path, *, sleep: float, resume: bool = False):
    """The 2 x 3 study the kill tests stop midway (``sleep`` seconds a trial leaves time to kill it)."""
    from shared_utils.study import Study

    return Study("killed", numpy_trial, {"a": {}, "b": {"hidden": 16}}, [0, 1, 2], out, base=dict(BASE, sleep=sleep),
                 resume=resume)


if __name__ == "__main__":   # python study_trials.py OUT [--resume] [--pool]: the study above
    pool = "--pool" in sys.argv      # long trials on a pool of 2: for killing the parent mid-study
    study = killed_study(Path(sys.argv[1]), sleep=30.0 if pool else 0.4, resume="--resume" in sys.argv)
    study.run(backend="pool" if pool else "serial", workers=2 if pool else 1, quiet=True).raise_for_failures()
    print("complete")
