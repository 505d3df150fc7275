"""What does a training loop do? The five steps written out by hand, against the project's engine.

An nn.Module MLP (784-256-128-10, ReLU) learns MNIST twice from the same initial weights and the same
batches: once with the loop below written out in full, no engine, each step on its own line

    logits = model(x)                    # 1. forward
    loss = F.cross_entropy(logits, y)    # 2. loss
    optimizer.zero_grad()                # 3. clear the previous step's gradients (they accumulate)
    loss.backward()                      # 4. backward: autograd fills every parameter's .grad
    optimizer.step()                     # 5. update the weights from their .grad

and once with shared_utils.pytorch.engine.fit (which adds checkpoints, resume, schedules, mixed precision,
metrics.csv). Same model, seed, batches and optimizer (SGD, momentum 0.9, no weight decay, constant rate),
so the two runs must agree: their test accuracies are asserted to be within 0.2 points (they are equal to
the last digit on a CPU), and their per-epoch losses are compared in curves.png.

Outputs in projects/pytorch_mechanics/runs/manual_loop/: manual/ and engine/ run folders (metrics.csv,
summary.json), curves.png, comparison.md/.csv.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from shared_utils import cli, data, plots, runs, stats
from shared_utils.pytorch import device as devices
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit
from shared_utils.pytorch.pipeline import loaders
from shared_utils.pytorch.models import MLP
from shared_utils.seed import seed_everything

HP = {"epochs": 3, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "hidden": (256, 128)}
TOLERANCE = 0.2   # points of test accuracy the two loops may differ by
QUICK = {"epochs": 1, "limit_train": 3000}


def build(seed: int) -> torch.nn.Module:
    seed_everything(seed)
    return MLP(hidden=HP["hidden"], in_features=28 * 28, classes=10)


@torch.no_grad()
def accuracy(model: torch.nn.Module, loader) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a loader, in eval mode, written out."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        logits = model(x)
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return total_loss / seen, correct / seen


def manual_fit(model: torch.nn.Module, train, val, epochs: int, lr: float, momentum: float,
               run: runs.RunDir | None = None) -> list[dict]:
    """The whole training loop, no engine: returns (and logs) one row per epoch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()                    # dropout and batch norm (none here) in training mode
        started, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
        for x, y in train:
            logits = model(x)                       # 1. forward
            loss = F.cross_entropy(logits, y)       # 2. loss (mean over the batch)
            optimizer.zero_grad()                   # 3. forget the last step's gradients
            loss.backward()                         # 4. fill every parameter's .grad
            optimizer.step()                        # 5. w <- w - lr * (momentum buffer of .grad)
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        seconds = time.perf_counter() - started
        val_loss, val_acc = accuracy(model, val)
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": correct / seen, "val_loss": val_loss,
               "val_acc": val_acc, "lr": lr, "seconds": seconds, "images_per_s": seen / seconds}
        history.append(row)
        if run is not None:
            run.log(**row)
    return history


def compare(args) -> dict:
    """Both loops on the same data, seed and settings; returns their test figures."""
    device = devices.resolve(args.device)
    ds = data.mnist_from_settings(cli.data_settings(args), subset_mode="random",
                                  limit_test=getattr(args, "limit_test", None))
    root = runs.root(__file__, "manual_loop", out=args.out)
    out = {}
    for name in ("manual", "engine"):
        model = build(args.seed).to(device)
        train, val, test = loaders(ds, batch_size=args.batch_size, seed=args.seed, device=device)
        run = runs.RunDir(__file__, f"manual_loop/{name}", args, path=root / name)
        started = time.perf_counter()
        if name == "manual":
            manual_fit(model, train, val, args.epochs, args.lr, HP["momentum"], run=run)
        else:
            cfg = TrainConfig(epochs=args.epochs, lr=args.lr, optimizer="sgd", momentum=HP["momentum"],
                              nesterov=False, weight_decay=0.0, schedule="none")
            fit(model, train, val, cfg, device=device, run=run, quiet=args.quiet, desc="engine")
        seconds = time.perf_counter() - started
        test_loss, test_acc = accuracy(model, test)
        if name == "engine":   # the engine's own evaluation agrees with the hand-written one
            assert abs(evaluate(model, test, device)["acc"] - test_acc) < 1e-9
        out[name] = run.summary(test_acc=test_acc, test_loss=test_loss, seconds=seconds)
        out[name]["path"] = run.path
    gap = 100 * abs(out["manual"]["test_acc"] - out["engine"]["test_acc"])
    out["gap_points"] = gap
    stats.write_table(["loop", "test accuracy (%)", "test loss", "seconds (train + validation)"],
                      [[n, f"{100 * out[n]['test_acc']:.2f}", f"{out[n]['test_loss']:.4f}", f"{out[n]['seconds']:.1f}"]
                       for n in ("manual", "engine")], root / "comparison",
                      caption=f"MNIST MLP {HP['hidden']}, {args.epochs} epoch(s), seed {args.seed}: "
                              f"gap {gap:.2f} points (allowed {TOLERANCE})")
    plots.compare_curves({"manual loop": out["manual"]["path"], "engine (fit)": out["engine"]["path"]},
                         root / "curves.png", metrics=("train_loss", "val_acc"),
                         title="The hand-written loop and the engine train the same model identically")
    if gap > TOLERANCE:
        raise AssertionError(f"the manual loop and the engine differ by {gap:.2f} points (> {TOLERANCE})")
    return out


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], quick=QUICK)
    args = cli.parse(p, argv)
    out = compare(args)
    for name in ("manual", "engine"):
        print(f"{name:7s} test accuracy {100 * out[name]['test_acc']:.2f}%  ({out[name]['seconds']:.1f} s)")
    print(f"gap {out['gap_points']:.2f} points (allowed {TOLERANCE}); outputs in {out['manual']['path'].parent}")
    return out


if __name__ == "__main__":
    cli.run(main)
