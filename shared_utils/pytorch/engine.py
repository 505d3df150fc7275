"""The one PyTorch training loop: fit() and evaluate() for every PyTorch experiment and study.

    cfg = TrainConfig(epochs=10, lr=0.1, schedule="cosine", label_smoothing=0.1)
    history = fit(model, train_loader, val_loader, cfg, run=run, device=device)

The task is a function ``loss_fn(model, (x, y)) -> (loss, {metric: batch mean})``; the default
is cross-entropy with accuracy (:func:`classification`), :func:`binary` gives per-example or per-step
binary cross-entropy (detectors, yes/no queries), and :func:`regression` gives MSE for reconstruction and
regression, so every kind of task trains through the same loop, writes the same
metrics.csv (``train_<metric>`` and ``val_<metric>`` per epoch), checkpoints, resumes and stops
on a NaN the same way. "Best" is a named metric and direction (``best_metric="val_loss",
best_mode="min"`` for a reconstruction).

What it does, so scripts don't: SGD (Nesterov) / Adam / AdamW (optionally AMSGrad, optionally inside
Lookahead) with weight decay; per-step schedules (step, cosine, linear decay, one-cycle, each but one-cycle
with optional linear warm-up); label smoothing; gradient clipping; mixed precision and channels-last
memory on CUDA, and on request on the CPU (``cpu_amp``: bfloat16, ``cpu_channels_last``); ``best.pt`` and
``last.pt`` loaded with ``weights_only=True``; ``resume=True`` continues from ``last.pt`` to the
same result as an uninterrupted run, and refuses a checkpoint made with other settings. Optional,
off by default: an exponential moving average of the weights (``ema_decay``), test-time
augmentation (``tta="flip"`` or ``"flip_translate"``) and TensorBoard scalars beside metrics.csv (``tensorboard=True``).
Under ``torchrun`` it trains with DistributedDataParallel (see :mod:`.distributed`). Early stopping
(``patience``) ends a run once its best metric has not improved for that many epochs.

fit() composes named pieces, each usable and testable alone: :class:`Updater` (the optimizer step with
mixed-precision loss scaling, clipping, the schedule, Lookahead and the EMA), :func:`train_epoch`,
:func:`evaluate` (with test-time augmentation), :class:`BestTracker` (best epoch and early stopping),
:class:`EpochLog` (metrics.csv, TensorBoard, console) and :func:`save_checkpoints` /
:func:`restore_checkpoint` (best.pt, last.pt and an exact resume).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable, Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from shared_utils import cli
from shared_utils.errors import UserError
from shared_utils.pytorch import distributed
from shared_utils.pytorch.checkpoint import load_torch, save_torch
from shared_utils.pytorch.muon import Muon
from shared_utils.runs import RunDir

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the fix is usually a smaller learning rate."""


@dataclass
class TrainConfig:
    epochs: int = 10
    lr: float = 0.1
    optimizer: str = "sgd"            # sgd | adam | adamw | muon (conv filters by Muon, the rest by SGD)
    momentum: float = 0.9             # SGD only
    nesterov: bool = True             # SGD only, when momentum > 0
    amsgrad: bool = False             # Adam/AdamW only
    weight_decay: float = 5e-4
    schedule: str = "cosine"          # cosine | linear (to zero) | step | onecycle | none
    warmup_epochs: float = 0.0        # linear warm-up before the schedule (not used by onecycle)
    step_size: int = 30               # epochs between x0.1 drops for schedule="step"
    label_smoothing: float = 0.0      # used by the default classification task
    grad_clip: float | None = None    # max global gradient norm
    amp: bool = True                  # mixed precision (float16) on CUDA
    channels_last: bool = True        # channels-last memory on CUDA
    cpu_amp: bool = False             # bfloat16 autocast on the CPU too (fast on CPUs with AMX or AVX512-BF16)
    cpu_channels_last: bool = False   # channels-last memory on the CPU too (oneDNN's fast convolution layout)
    lookahead_steps: int = 0          # > 0: Lookahead (Zhang et al. 2019) around the optimizer, every k steps ...
    lookahead_alpha: float = 0.5      # ... the slow weights move this share of the way to the fast ones
    best_metric: str = "val_acc"      # the metrics.csv column that picks best.pt ...
    best_mode: str = "max"            # ... and whether higher (max) or lower (min) is better
    ema_decay: float | None = None    # e.g. 0.999: evaluate and keep an exponential moving average
    tta: str = "none"                 # none | flip: average predictions over flipped copies at evaluation
    tensorboard: bool = False         # also write TensorBoard scalars to <run>/tensorboard
    lr_scales: dict | None = None     # {"encoder.": 0.1}: parameters named with a prefix train at lr x scale
    patience: int | None = None       # early stopping: end after this many epochs without a better best_metric
    muon_lr: float = 0.24             # optimizer="muon": the convolution filters' learning rate ...
    muon_momentum: float = 0.6        # ... and momentum (airbench94_muon's); lr, momentum, nesterov and
                                      # weight_decay above are the SGD settings of every other parameter

    @classmethod
    def from_config(cls, config: Mapping) -> "TrainConfig":
        """The fields a study trial's configuration names (its other keys, such as the model, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

    def __post_init__(self):
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES,
                   "best_mode": ("max", "min"), "tta": tuple(TTA_VIEWS)}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"TrainConfig.{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig.ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"TrainConfig.patience must be at least 1 (or None), got {self.patience}")
        if self.lookahead_steps < 0 or not 0.0 < self.lookahead_alpha <= 1.0:
            raise ValueError(f"TrainConfig.lookahead_steps must be >= 0 and lookahead_alpha in (0, 1], got "
                             f"{self.lookahead_steps} and {self.lookahead_alpha}")

    def autocast(self, device: torch.device):
        """The autocast context of a forward pass on ``device``: float16 on CUDA (``amp``), bfloat16 on
        the CPU (``cpu_amp``), otherwise off."""
        if device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16, enabled=self.amp)
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cpu_amp and device.type == "cpu")

    def uses_channels_last(self, device: torch.device) -> bool:
        return self.channels_last if device.type == "cuda" else self.cpu_channels_last and device.type == "cpu"


SCHEDULES = ("cosine", "linear", "step", "onecycle", "none")
OPTIMIZERS = ("sgd", "adam", "adamw", "muon")


# --------------------------------------------------------------------------- tasks
def classification(label_smoothing: float = 0.0) -> LossFn:
    """Cross-entropy and accuracy. Targets may be class indices or (mixup/cutmix) class probabilities."""
    def loss_fn(model, batch):
        x, y = batch
        logits = model(x).float()
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        labels = y.argmax(1) if y.is_floating_point() else y
        return loss, {"acc": (logits.argmax(1) == labels).float().mean()}
    return loss_fn


def binary() -> LossFn:
    """Binary cross-entropy on logits of any shape, (N,) per example or (N, T) per step of a sequence, with
    accuracy at logit 0 (probability 0.5). Targets are 0/1 of the same shape."""
    def loss_fn(model, batch):
        x, y = batch
        logits = model(x).float()
        target = y.float()
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return loss, {"acc": ((logits > 0).float() == target).float().mean()}
    return loss_fn


def regression() -> LossFn:
    """Mean squared error (per element) between the model's output and the target: reconstruction,
    regression. Logs ``mse``; pick the best checkpoint with ``best_metric="val_loss", best_mode="min"``."""
    def loss_fn(model, batch):
        x, y = batch
        out = model(x).float()
        loss = F.mse_loss(out, y.float())
        return loss, {"mse": loss.detach()}
    return loss_fn


# --------------------------------------------------------------------------- test-time augmentation
TTA_VIEWS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], ...]] = {
    "none": (lambda x: x,),
    "flip": (lambda x: x, lambda x: x.flip(3)),
    # the image and its mirror, each also shifted one pixel left and right (edges repeated): six views
    "flip_translate": tuple(
        (lambda x, f=flip, d=shift: _shift(x.flip(3) if f else x, d)) for flip in (False, True) for shift in (0, -1, 1)),
}


def _shift(x: torch.Tensor, dx: int) -> torch.Tensor:
    """The batch moved ``dx`` pixels along its width, the edge column repeated into the gap."""
    if dx == 0:
        return x
    padded = F.pad(x, (1, 1, 0, 0), mode="replicate")
    return padded[..., 1 + dx: 1 + dx + x.shape[-1]]


class TestTimeAugmentation(nn.Module):
    """Average the wrapped model's outputs over views of the input (e.g. the image and its mirror)."""

    __test__ = False   # not a pytest class

    def __init__(self, model: nn.Module, views: str = "flip"):
        super().__init__()
        self.model, self.views = model, TTA_VIEWS[views]

    def forward(self, x):
        return torch.stack([self.model(view(x)).float() for view in self.views]).mean(0)


# --------------------------------------------------------------------------- optimizer and schedule
def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.lr_scales:   # one group per prefix (first match wins) and one for the rest, each at its own rate
        groups: dict[float, list] = {}
        for name, p in model.named_parameters():
            if p.requires_grad:
                scale = next((v for k, v in cfg.lr_scales.items() if name.startswith(k)), 1.0)
                groups.setdefault(float(scale), []).append(p)
        params = [{"params": ps, "lr": cfg.lr * scale} for scale, ps in groups.items()]
    if cfg.optimizer == "muon":     # 4-D weights (convolution filters) orthogonalised, the rest plain SGD
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        filters = [p for _, p in named if p.ndim == 4]
        rest = [p for _, p in named if p.ndim != 4]
        return Muon([{"params": filters, "lr": cfg.muon_lr, "momentum": cfg.muon_momentum, "nesterov": True},
                     {"params": rest, "lr": cfg.lr, "momentum": cfg.momentum, "nesterov": cfg.nesterov,
                      "weight_decay": cfg.weight_decay, "orthogonalize": False}][:2 if rest else 1])
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad)


class Lookahead:
    """Lookahead (Zhang et al. 2019) around an optimizer: it takes ``k`` ordinary ("fast") steps, then the
    slow weights move ``alpha`` of the way to the fast ones, phi <- phi + alpha (theta - phi), and the fast
    weights restart from there, theta <- phi. The slow copy is this object's state (``state_dict``), so a
    resumed run continues exactly. The wrapped optimizer and its schedule are used as they are."""

    def __init__(self, optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5):
        self.optimizer, self.k, self.alpha, self.steps = optimizer, int(k), float(alpha), 0
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.slow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.steps % self.k:
            return
        for fast, slow in zip(self.params, self.slow):
            slow.add_(fast - slow, alpha=self.alpha)
            fast.copy_(slow)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "slow": [t.clone() for t in self.slow]}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        for mine, saved in zip(self.slow, state["slow"]):
            mine.copy_(saved)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A per-step schedule as a LambdaLR multiplier, so its state is one integer (resumable)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=total,
                                                   pct_start=0.25, cycle_momentum=cfg.optimizer == "sgd")
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        if cfg.schedule == "linear":
            return max(0.0, 1.0 - t)
        if cfg.schedule == "step":
            return 0.1 ** ((step - warmup) // (cfg.step_size * steps_per_epoch))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------- evaluation
def _batch_size(batch: Batch) -> int:
    return int(batch[0].shape[0])


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device, loss_fn: LossFn | None = None,
             tta: str = "none", cfg: TrainConfig | None = None) -> dict[str, float]:
    """Mean loss and metrics over a loader, in eval mode: ``{"loss": ..., "acc": ...}`` for the default
    classification task. Under torchrun each rank scores its shard and the sums are all-reduced. Given the
    run's ``cfg``, the forward passes use its autocast and memory layout (bfloat16 / channels-last when it
    trained that way)."""
    loss_fn = loss_fn or classification()
    net = TestTimeAugmentation(model, tta) if tta != "none" else model
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    count = torch.zeros((), device=device)
    for x, y in loader:
        batch = (x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        if cfg is not None and cfg.uses_channels_last(device) and batch[0].dim() == 4:
            batch = (batch[0].contiguous(memory_format=torch.channels_last), batch[1])
        with cfg.autocast(device) if cfg is not None else contextlib.nullcontext():
            loss, metrics = loss_fn(net, batch)
        n = _batch_size(batch)
        for name, value in {"loss": loss, **metrics}.items():
            sums[name] = sums.get(name, torch.zeros((), device=device)) + value.detach().float() * n
        count += n
    names = list(sums)
    totals = distributed.all_reduce_sum(torch.stack([sums[k] for k in names] + [count])) if names else count
    if not names:
        return {}
    return {name: float(totals[i]) / max(float(totals[-1]), 1.0) for i, name in enumerate(names)}


# --------------------------------------------------------------------------- resume
def _check_resumable(state, cfg: TrainConfig, path) -> None:
    """A checkpoint is adopted only if it is this engine's last.pt made with the same settings
    (the epoch budget may grow: successive halving continues runs to a longer budget)."""
    needed = {"model", "optimizer", "scheduler", "scaler", "epoch", "step", "best_score", "torch_rng", "history",
              "config"}
    if not isinstance(state, dict) or not needed <= set(state):
        missing = sorted(needed - set(state)) if isinstance(state, dict) else ["(not a dict)"]
        raise UserError(f"{path} is not a resumable checkpoint of this engine (missing {', '.join(missing)}); "
                        "start without --resume or use another --out")
    # a field added to TrainConfig after the checkpoint was made counts as its default there
    saved = {**asdict(TrainConfig()), **dict(state["config"])}
    now = asdict(cfg)
    differ = sorted(k for k in set(saved) | set(now) if k != "epochs" and saved.get(k) != now.get(k))
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} in the checkpoint, {now.get(k)!r} now" for k in differ[:3])
        raise UserError(f"{path} was made with other settings ({detail}); resume with the same settings, "
                        "or start afresh without --resume")
    if cfg.epochs < int(state["epoch"]):
        raise UserError(f"{path} has trained {state['epoch']} epochs, more than --epochs {cfg.epochs}; "
                        "ask for at least as many")


# --------------------------------------------------------------------------- the pieces fit() composes
class Updater:
    """One optimizer step and everything that rides on it, in this order: the backward pass (scaled for
    float16 mixed precision on CUDA), ``on_backward``, gradient clipping, the optimizer, the per-step
    schedule, Lookahead and the exponential moving average of the weights (EMA). Its state (all of those
    plus the step count) is one dict, so a resumed run continues exactly."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, steps_per_epoch: int, device: torch.device):
        self.model, self.cfg, self.steps = model, cfg, 0
        self.optimizer = make_optimizer(model, cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg, steps_per_epoch)
        self.lookahead = Lookahead(self.optimizer, cfg.lookahead_steps, cfg.lookahead_alpha) if cfg.lookahead_steps \
            else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp)
        self.ema = None
        if cfg.ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    @property
    def scored(self) -> nn.Module:
        """The weights evaluation and best.pt use: the moving average's when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def step(self, loss: torch.Tensor, on_backward: Callable[[int, nn.Module], None] | None = None) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.steps += 1
        if on_backward is not None:
            on_backward(self.steps, self.model)
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.lookahead is not None:
            self.lookahead.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "step": self.steps,
                "ema": self.ema.state_dict() if self.ema is not None else {},
                "lookahead": self.lookahead.state_dict() if self.lookahead is not None else {}}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.lookahead is not None:
            self.lookahead.load_state_dict(state.get("lookahead") or {"steps": 0, "slow": self.lookahead.slow})
        self.steps = int(state["step"])


class BestTracker:
    """Which epoch is best by ``cfg.best_metric`` (a ``val_`` metric falls back to its ``train_`` twin when
    there is no validation loader), and early stopping: with ``cfg.patience`` set, training ends once that
    many epochs in a row have not improved on the best."""

    def __init__(self, cfg: TrainConfig):
        self.metric, self.mode, self.patience = cfg.best_metric, cfg.best_mode, cfg.patience
        self.best: float | None = None
        self.stale = 0                  # epochs since the last improvement

    def update(self, row: Mapping[str, float]) -> bool:
        """Record an epoch's row; True if it is the best so far."""
        score = row.get(self.metric, row.get(self.metric.replace("val_", "train_", 1)))
        if score is None:
            raise UserError(f"best_metric {self.metric!r} is not among the logged metrics "
                            f"({', '.join(k for k in row if k != 'epoch')})")
        improved = self.best is None or (score > self.best if self.mode == "max" else score < self.best)
        self.best, self.stale = (score, 0) if improved else (self.best, self.stale + 1)
        return improved

    def should_stop(self) -> bool:
        return self.patience is not None and self.stale >= self.patience


class EpochLog:
    """Where an epoch's row goes: metrics.csv in the run folder, TensorBoard scalars beside it
    (``cfg.tensorboard``), and a console line unless quiet. Only the main process writes."""

    def __init__(self, run: RunDir | None, cfg: TrainConfig, *, quiet: bool, desc: str):
        self.run, self.quiet, self.desc = run, quiet, desc
        self.main = distributed.is_main()
        self.writer = None
        if cfg.tensorboard and run is not None and self.main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run / "tensorboard"))

    def write(self, row: Mapping[str, float]) -> None:
        if self.run is not None and self.main:
            self.run.log(**row)
            if self.writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        self.writer.add_scalar(key, value, row["epoch"])
                self.writer.flush()
        if not self.quiet and self.main:
            print(f"{self.desc} epoch {row['epoch']}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def save_checkpoints(run: RunDir, model: nn.Module, updater: Updater, tracker: BestTracker, *, epoch: int,
                     improved: bool, history: list[dict], train_loader, cfg: TrainConfig) -> None:
    """best.pt when the epoch improved (the scored weights), and last.pt: everything a resume needs."""
    if improved:
        save_torch(run / "best.pt", {"model": updater.scored.state_dict(), "epoch": epoch, cfg.best_metric: tracker.best})
    state = updater.state_dict()
    save_torch(run / "last.pt", {
        "model": model.state_dict(), "optimizer": state["optimizer"], "scheduler": state["scheduler"],
        "scaler": state["scaler"], "epoch": epoch, "step": state["step"], "best_score": tracker.best,
        "torch_rng": torch.get_rng_state(), "history": history,
        "loader": train_loader.state_dict() if hasattr(train_loader, "state_dict") else {},
        "ema": state["ema"], "lookahead": state["lookahead"], "config": asdict(cfg)})


def restore_checkpoint(run: RunDir, model: nn.Module, updater: Updater, tracker: BestTracker, train_loader,
                       cfg: TrainConfig, device: torch.device) -> tuple[int, list[dict]]:
    """Continue from the run's last.pt: (the next epoch, the history so far). The metrics file is cut back
    to that history, dropping the row of an epoch cut off before its checkpoint."""
    state = load_torch(run / "last.pt", map_location=device)
    _check_resumable(state, cfg, run / "last.pt")
    try:
        model.load_state_dict(state["model"])
        updater.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise UserError(f"{run / 'last.pt'} belongs to another model ({str(exc).splitlines()[0][:100]}); "
                        "start without --resume or use another --out") from None
    torch.set_rng_state(state["torch_rng"])
    if hasattr(train_loader, "load_state_dict"):
        train_loader.load_state_dict(state["loader"])
    for row in state["history"]:     # replaying the rows restores the best score and the epochs since it
        tracker.update(row)
    tracker.best = state["best_score"]
    if distributed.is_main():
        run.replace_metrics(state["history"])
    return state["epoch"] + 1, state["history"]


def train_epoch(net: nn.Module, loader, updater: Updater, loss_fn: LossFn, cfg: TrainConfig, device: torch.device, *,
                epoch: int, quiet: bool, desc: str, on_backward=None) -> dict:
    """One pass over the training loader: the epoch's mean of every metric of the task (``train_<name>``),
    its learning rate at the start, seconds and images per second."""
    net.train()
    started, lr = time.perf_counter(), updater.lr
    sums: dict[str, torch.Tensor] = {}
    seen = torch.zeros((), device=device)
    for x, y in cli.progress(loader, quiet=quiet, desc=f"{desc} {epoch}/{cfg.epochs}", unit="batch"):
        batch = (x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        if cfg.uses_channels_last(device) and batch[0].dim() == 4:
            batch = (batch[0].contiguous(memory_format=torch.channels_last), batch[1])
        with cfg.autocast(device):
            loss, metrics = loss_fn(net, batch)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch}, step {updater.steps + 1}; "
                                   f"lower the learning rate (now {updater.lr:g})")
        updater.step(loss, on_backward)
        n = _batch_size(batch)
        for name, value in {"loss": loss, **metrics}.items():
            sums[name] = sums.get(name, torch.zeros((), device=device)) + value.detach().float() * n
        seen += n
    names = list(sums)
    totals = distributed.all_reduce_sum(torch.stack([sums[k] for k in names] + [seen]))
    seconds = time.perf_counter() - started
    means = {f"train_{k}": float(totals[i]) / float(totals[-1]) for i, k in enumerate(names)}
    return {**means, "lr": lr, "seconds": seconds, "images_per_s": float(totals[-1]) / seconds}


def _record_setup(run: RunDir, model: nn.Module, cfg: TrainConfig, device: torch.device, train_loader) -> None:
    run.update_config(train=asdict(cfg), model={"class": type(model).__name__,
                                                "parameters": sum(p.numel() for p in model.parameters()),
                                                "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)},
                      device=str(device), world_size=distributed.world_size(),
                      batch_size=getattr(train_loader, "batch_size", None),
                      augment=[getattr(t, "__name__", repr(t)) for t in getattr(train_loader, "augment", [])])


# --------------------------------------------------------------------------- training
def fit(model: nn.Module, train_loader, val_loader, cfg: TrainConfig, *, device: torch.device,
        run: RunDir | None = None, resume: bool | None = None, quiet: bool = True, desc: str = "train",
        loss_fn: LossFn | None = None, val_loss_fn: LossFn | None = None,
        on_backward: Callable[[int, nn.Module], None] | None = None, stop_after: int | None = None) -> list[dict]:
    """Train; returns the per-epoch rows (also in run/metrics.csv).

    ``loss_fn`` is the task (default: classification with ``cfg.label_smoothing``); ``val_loss_fn``
    scores the validation loader (default: ``loss_fn``, or plain classification for the default task,
    so validation loss is never smoothed). ``on_backward(step, model)`` runs after each backward pass,
    before the optimizer step (gradient statistics). ``resume`` defaults to the run folder's own
    ``RunDir(..., resume=...)``, so a script says --resume once. ``train_loader`` may offer ``state_dict()`` for
    its shuffling RNG, which resume restores. ``stop_after`` ends this call after that epoch (a time
    budget); the schedule still spans ``cfg.epochs``, so a later ``resume=True`` call finishes the run
    exactly as one uninterrupted call would.
    """
    device = distributed.setup(device)
    resume = bool(getattr(run, "resume", False)) if resume is None else resume
    val_loss_fn = val_loss_fn or loss_fn or classification()
    loss_fn = loss_fn or classification(cfg.label_smoothing)
    model.to(device)
    if cfg.uses_channels_last(device):
        model.to(memory_format=torch.channels_last)
    net = model if not distributed.active() else nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    updater, tracker = Updater(model, cfg, len(train_loader), device), BestTracker(cfg)
    if run is not None:
        _record_setup(run, model, cfg, device, train_loader)
    start_epoch, history = 1, []
    if resume and run is not None and (run / "last.pt").exists():
        start_epoch, history = restore_checkpoint(run, model, updater, tracker, train_loader, cfg, device)
    log = EpochLog(run, cfg, quiet=quiet, desc=desc)
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            trained = train_epoch(net, train_loader, updater, loss_fn, cfg, device, epoch=epoch, quiet=quiet,
                                  desc=desc, on_backward=on_backward)
            row = {"epoch": epoch, **{k: v for k, v in trained.items() if k.startswith("train_")}}
            if val_loader is not None:
                val = evaluate(updater.scored, val_loader, device, val_loss_fn, tta=cfg.tta, cfg=cfg)
                row.update({f"val_{k}": v for k, v in val.items()})
            row.update(lr=trained["lr"], seconds=trained["seconds"], images_per_s=trained["images_per_s"])
            history.append(row)
            improved = tracker.update(row)
            log.write(row)
            if run is not None and distributed.is_main():
                save_checkpoints(run, model, updater, tracker, epoch=epoch, improved=improved, history=history,
                                 train_loader=train_loader, cfg=cfg)
            distributed.barrier()   # nobody races ahead of rank 0's checkpoint
            if (stop_after is not None and epoch >= stop_after) or tracker.should_stop():
                break
    finally:
        log.close()
    return history


def load_best(model: nn.Module, run: RunDir, device: torch.device | str = "cpu") -> nn.Module:
    """Load ``best.pt`` (weights only) into ``model`` (the averaged weights when the run used EMA)."""
    model.load_state_dict(load_torch(run / "best.pt", map_location=device)["model"])
    return model


def load_final(model: nn.Module, run: RunDir, device: torch.device | str = "cpu") -> nn.Module:
    """Load the weights the run ended with, from ``last.pt`` (weights only): the moving average's when the
    run kept one (``ema_decay``), else the model's own. A final figure that must not pick an epoch uses this."""
    state = load_torch(run / "last.pt", map_location=device)
    averaged = {k[len("module."):]: v for k, v in (state.get("ema") or {}).items() if k.startswith("module.")}
    model.load_state_dict(averaged or state["model"])
    return model
