"""Trains a small MLP through the engine; run under torchrun by test_distributed.py (and alone, as the
single-process reference). argv: OUT_DIR [--epochs N] [--resume] [--stop-after N]."""
from __future__ import annotations

import argparse

import numpy as np
import torch

from shared_utils import runs
from shared_utils.pytorch.engine import TrainConfig, fit
from shared_utils.pytorch.models import MLP
from shared_utils.pytorch.pipeline import TensorLoader


def data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20)).astype(np.float32)
    y = (x[:, :10].sum(1) > x[:, 10:].sum(1)).astype(np.int64) + 2 * (x[:, 0] > 0)
    return x, y


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-after", type=int, default=None)
    args = p.parse_args()
    torch.manual_seed(0)
    model = MLP(hidden=(32,), in_features=20, classes=4)
    x, y = data()
    train = TensorLoader(x, y, batch_size=32, seed=0)              # 32 = the global batch
    val = TensorLoader(x[:64], y[:64], batch_size=64, shuffle=False)
    run = runs.RunDir(__file__, "ddp", path=args.out, resume=args.resume)
    cfg = TrainConfig(epochs=args.epochs, lr=0.1, optimizer="sgd", weight_decay=1e-4, schedule="cosine")
    history = fit(model, train, val, cfg, device=torch.device("cpu"), run=run, resume=args.resume,
                  stop_after=args.stop_after)
    run.summary(final_val_acc_all_ranks=history[-1]["val_acc"])


if __name__ == "__main__":
    main()
