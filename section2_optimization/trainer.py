"""The NumPy training loop every NumPy section uses: fit() and evaluate().

Mini-batches in a seeded order, one optimizer step per batch, an optional schedule
stepped per batch or per epoch, a metrics row per epoch into the run folder, the best
model (by validation accuracy, else validation loss) saved as ``best.npz``, and a clear
stop when the loss turns NaN or infinite.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from section2_optimization.layers import Module
from section2_optimization.optim import LRScheduler, Optimizer
from section2_optimization.parallel import DataParallel
from shared_utils import cli
from shared_utils.errors import UserError
from shared_utils.runs import RunDir

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: the fix is usually a smaller learning rate."""


@dataclass
class History:
    rows: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_state: dict | None = None
    worker_peak_rss_mb: float = 0.0     # DataParallel's worker processes, each beside this one (MB)

    def column(self, key: str) -> np.ndarray:
        return np.array([row.get(key, np.nan) for row in self.rows], dtype=float)

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}


def accuracy_of(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Share of correct predictions: argmax for (N, K>1) logits, sign for one logit per row."""
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return float((outputs.argmax(axis=1) == labels).mean())
    return float(((outputs.reshape(-1) > 0).astype(np.int64) == labels.reshape(-1)).mean())


def predict(model: Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Model outputs in evaluation mode, batch by batch (keeps memory flat for big sets)."""
    return np.concatenate([model.forward(x[i:i + batch_size], train=False)
                           for i in range(0, len(x), batch_size)])


def evaluate(model: Module, loss_fn: LossFn, x: np.ndarray, y: np.ndarray, *, batch_size: int = 1000,
             accuracy: bool = True) -> tuple[float, float]:
    """Mean loss and accuracy (NaN when ``accuracy=False``, e.g. regression) in eval mode."""
    outputs = predict(model, x, batch_size)
    loss, _ = loss_fn(outputs, y)
    return loss, accuracy_of(outputs, y) if accuracy else float("nan")


def fit(model: Module, loss_fn: LossFn, optimizer: Optimizer, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None = None, *, epochs: int, batch_size: int, seed: int = 0,
        run: RunDir | None = None, scheduler: LRScheduler | None = None, schedule_per: str = "epoch",
        accuracy: bool = True, quiet: bool = True, checkpoint: str | None = "best.npz",
        on_batch: Callable[[int, float], None] | None = None, desc: str = "",
        checkpoint_extra: dict[str, np.ndarray] | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        threads: int = 1, backend: str = "thread") -> History:
    """Train ``model`` and return its History; ``run`` receives metrics.csv rows and best.npz.

    ``schedule_per`` is ``"batch"`` or ``"epoch"``: when the scheduler steps. ``on_batch(step, loss)``
    sees every batch loss (for per-iteration curves). ``checkpoint_extra`` is saved beside the
    weights (e.g. the architecture, so a checkpoint can rebuild its model). ``augment(x_batch, rng)``
    transforms each training batch (never validation data), drawing from the loop's seeded RNG.
    ``threads > 1`` splits every batch (and every validation pass) across that many threads with
    DataParallel, or worker processes with ``backend="process"``: the same gradients within rounding,
    reproducible for a given number of threads, and the same with either backend.
    """
    x_train, y_train = train
    rng = np.random.default_rng(seed)
    # like x.requires_grad = False in torch: nobody needs dL/d(input) while training
    restore_input_grad = getattr(model, "requires_input_grad", None)
    if restore_input_grad is not None:
        model.requires_input_grad = False
    try:
        with contextlib.ExitStack() as stack:
            net = stack.enter_context(DataParallel(model, threads, backend)) if threads > 1 else model
            history = _fit(net, loss_fn, optimizer, x_train, y_train, val, rng, epochs=epochs,
                           batch_size=batch_size, run=run, scheduler=scheduler, schedule_per=schedule_per,
                           accuracy=accuracy, quiet=quiet, checkpoint=checkpoint, on_batch=on_batch, desc=desc,
                           checkpoint_extra=checkpoint_extra, augment=augment)
        if isinstance(net, DataParallel):                  # closed by now: its workers have reported
            history.worker_peak_rss_mb = net.worker_peak_rss_mb
        return history
    finally:
        if restore_input_grad is not None:
            model.requires_input_grad = restore_input_grad


def _fit(model, loss_fn, optimizer, x_train, y_train, val, rng, *, epochs, batch_size, run, scheduler,
         schedule_per, accuracy, quiet, checkpoint, on_batch, desc, checkpoint_extra, augment) -> History:
    history = History()
    best_key = None
    step = 0
    n = len(x_train)
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        lr_used = optimizer.lr
        order = rng.permutation(n)
        loss_sum, correct = 0.0, 0.0
        batches = range(0, n, batch_size)
        for start in cli.progress(batches, quiet=quiet, desc=desc or f"epoch {epoch}/{epochs}", unit="batch"):
            idx = order[start:start + batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if augment is not None:
                xb = augment(xb, rng)
            if isinstance(model, DataParallel):   # forward, loss and backward per shard, one hand-over
                outputs, loss = model.train_step(xb, yb, loss_fn)
            else:
                outputs = model.forward(xb, train=True)
                loss, grad = loss_fn(outputs, yb)
            if not np.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss} at epoch {epoch}, step {step + 1}; "
                                       f"lower the learning rate (now {optimizer.lr:g})")
            if not isinstance(model, DataParallel):
                model.backward(grad)
            optimizer.step()
            if scheduler is not None and schedule_per == "batch":
                scheduler.step()
            loss_sum += loss * len(idx)
            if accuracy:
                correct += accuracy_of(outputs, yb) * len(idx)
            step += 1
            if on_batch is not None:
                on_batch(step, loss)
        if scheduler is not None and schedule_per == "epoch":
            scheduler.step()
        row = {"epoch": epoch, "train_loss": loss_sum / n, "train_acc": correct / n if accuracy else None}
        if val is not None:
            val_loss, val_acc = evaluate(model, loss_fn, val[0], val[1], accuracy=accuracy)
            row.update(val_loss=val_loss, val_acc=val_acc if accuracy else None)
        row.update(lr=lr_used, seconds=time.perf_counter() - started)
        history.rows.append(row)
        if run is not None:
            run.log(**row)
        # keep the best model: by validation accuracy, else validation loss, else train loss
        key = (row.get("val_acc") if accuracy and val is not None else
               -row["val_loss"] if val is not None else -row["train_loss"])
        if best_key is None or key > best_key:
            best_key, history.best_epoch = key, epoch
            history.best_state = {k: v.copy() for k, v in model.state_dict().items()}
            if run is not None and checkpoint:
                run.save_checkpoint({**history.best_state, **(checkpoint_extra or {})}, checkpoint)
    return history
