"""The one PyTorch training loop: fit() and evaluate() for every PyTorch experiment.

    cfg = TrainConfig(epochs=10, lr=0.1, schedule="cosine", label_smoothing=0.1)
    history = fit(model, train_loader, val_loader, cfg, run=run, device=device)

What it does, so scripts don't: SGD/Adam/AdamW with weight decay; per-step schedules (step,
cosine, one-cycle, each with optional linear warm-up); label smoothing; gradient clipping;
mixed precision and channels-last memory on CUDA; a metrics.csv row per epoch (losses,
accuracies, learning rate, seconds, images per second); ``best.pt`` and ``last.pt`` checkpoints
loaded with ``weights_only=True``; ``resume=True`` continues from ``last.pt`` to the same result
as an uninterrupted run; and a clear stop when the loss turns NaN or infinite.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from shared_utils import cli
from shared_utils.errors import UserError
from shared_utils.runs import RunDir, load_torch, save_torch


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the fix is usually a smaller learning rate."""


@dataclass
class TrainConfig:
    epochs: int = 10
    lr: float = 0.1
    optimizer: str = "sgd"            # sgd (Nesterov momentum) | adam | adamw
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"          # cosine | step | onecycle | none
    warmup_epochs: float = 0.0        # linear warm-up before the schedule (not used by onecycle)
    step_size: int = 30               # epochs between x0.1 drops for schedule="step"
    label_smoothing: float = 0.0
    grad_clip: float | None = None    # max global gradient norm
    amp: bool = True                  # mixed precision, only ever on CUDA
    channels_last: bool = True        # only ever on CUDA


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A per-step schedule as a LambdaLR multiplier, so its state is one integer (resumable)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total,
                                                   pct_start=0.25, cycle_momentum=cfg.optimizer == "sgd")
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        if cfg.schedule == "step":
            return 0.1 ** ((step - warmup) // (cfg.step_size * steps_per_epoch))
        if cfg.schedule == "none":
            return 1.0
        raise ValueError(f"unknown schedule {cfg.schedule!r}")

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device,
             label_smoothing: float = 0.0) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a loader, in eval mode."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return loss_sum / max(count, 1), correct / max(count, 1)


def fit(model: nn.Module, train_loader, val_loader, cfg: TrainConfig, *, device: torch.device,
        run: RunDir | None = None, resume: bool = False, quiet: bool = True, desc: str = "train",
        on_backward: Callable[[int, nn.Module], None] | None = None, stop_after: int | None = None) -> list[dict]:
    """Train; returns the per-epoch rows (also in run/metrics.csv).

    ``on_backward(step, model)`` runs after each backward pass, before the optimizer step
    (gradient statistics for the gradient-flow study). ``train_loader`` may offer
    ``state_dict()`` for its shuffling RNG, which resume restores. ``stop_after`` ends this call
    after that epoch (a time budget); the schedule still spans ``cfg.epochs``, so a later
    ``resume=True`` call finishes the run exactly as one uninterrupted call would.
    """
    cuda = device.type == "cuda"
    model.to(device)
    if cuda and cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(train_loader))
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp)
    history: list[dict] = []
    start_epoch, best_val, step = 1, -1.0, 0
    if resume and run is not None and (run / "last.pt").exists():
        state = load_torch(run / "last.pt", map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if hasattr(train_loader, "load_state_dict"):
            train_loader.load_state_dict(state["loader"])
        start_epoch, best_val, step = state["epoch"] + 1, state["best_val_acc"], state["step"]
        history = state["history"]
        if run is not None:
            run.replace_metrics(history)   # drop rows of an epoch that was cut off before its checkpoint
    for epoch in range(start_epoch, cfg.epochs + 1):
        model.train()
        started = time.perf_counter()
        lr_start = optimizer.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for x, y in cli.progress(train_loader, quiet=quiet, desc=f"{desc} {epoch}/{cfg.epochs}", unit="batch"):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cuda and cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.float16, enabled=cuda and cfg.amp):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch}, step {step + 1}; "
                                       f"lower the learning rate (now {optimizer.param_groups[0]['lr']:g})")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            step += 1
            if on_backward is not None:
                on_backward(step, model)
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        seconds = time.perf_counter() - started
        row = {"epoch": epoch, "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen}
        if val_loader is not None:
            row["val_loss"], row["val_acc"] = evaluate(model, val_loader, device)
        row.update(lr=lr_start, seconds=seconds, images_per_s=seen / seconds)
        history.append(row)
        if run is not None:
            run.log(**row)
            score = row.get("val_acc", row["train_acc"])
            if score > best_val:
                best_val = score
                save_torch(run / "best.pt", {"model": model.state_dict(), "epoch": epoch, "val_acc": score})
            save_torch(run / "last.pt", {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch, "step": step,
                "best_val_acc": best_val, "torch_rng": torch.get_rng_state(), "history": history,
                "loader": train_loader.state_dict() if hasattr(train_loader, "state_dict") else {},
                "config": asdict(cfg)})
        if not quiet:
            print(f"{desc} epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        if stop_after is not None and epoch >= stop_after:
            break
    return history


def load_best(model: nn.Module, run: RunDir, device: torch.device | str = "cpu") -> nn.Module:
    """Load ``best.pt`` (weights only) into ``model``."""
    model.load_state_dict(load_torch(run / "best.pt", map_location=device)["model"])
    return model
