"""airbench-style CIFAR-10 training: the fastest published recipes' network, data feeding, optimizers, schedules,
weight averaging and test-time views, in one trainer that benchmarks/cifar_anchor.py (the airbench94 anchor) and
projects/cifar_best (its Muon recipe) both drive with their own settings dict (``hp``).

    summary = train(config, AIRBENCH94, __file__)           # config: a study trial's (seed, run_dir, data...)

The two published settings (Jordan 2024, arXiv:2404.00498, and its successor airbench94_muon):
  AIRBENCH94       Nesterov SGD for every trained weight (lr and weight decay per 1024 examples, decoupled from
                   the momentum), BN shifts at 64x the learning rate, a triangular schedule, and from epoch 3 a
                   Lookahead-like average that replaces the weights every 5 steps; 9.9 epochs of batch 1024.
  AIRBENCH94_MUON  Muon (orthogonalised momentum, shared_utils.pytorch.muon) for the 3x3 convolution filters and
                   Nesterov SGD for the whitening bias, BN shifts and the linear head, each at its own rate; the
                   head starts with unit-std weights and its logits are divided by its width; the schedule decays
                   linearly to zero (the whitening bias over its 3 epochs); no averaging; 8 epochs of batch 2000.
Both: FastNet 64/256/256 with a GELU after an uncentred whitening stem (its bias trained for the first 3
epochs), dirac starts, BatchNorm eps 1e-12 / momentum 0.4 / fixed scales; alternating flip + translate 2; the
summed label-smoothed (0.2) cross-entropy; six-view test-time augmentation (``tta_views``).

Neither published setting has it, but either may train its first ``crop_epochs`` on a random ``crop_size`` x
``crop_size`` window of each (flipped, translated) image (random_crops): progressive resizing in the form that
keeps the objects' scale (the form MosaicML's documentation reports better for a CIFAR-10 ResNet; not tested
here). The network takes any side from 10 (it ends in a global max pool); measured on an AMD EPYC in float32, an
epoch on 24 x 24 crops costs 0.55x a whole-image epoch (projects/cifar_best/README.md).

Every precision trains in channels-last memory: oneDNN's convolutions are faster in it on CPUs in float32 as
well (benchmarks/cifar_precision.py: 1.32x on an AMD EPYC Zen 3 at batch 512; torch.compile added nothing to it).

The time is counted as the papers count it (``counted_seconds``): the whitening set-up, the training steps and
the final test-time augmented evaluation, not the per-epoch one-view test scores logged for the curve.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from shared_utils import data, runs
from shared_utils.errors import UserError
from shared_utils.pytorch.checkpoint import load_torch, save_torch
from shared_utils.pytorch.device import bf16_probe_seen, precision_for
from shared_utils.pytorch.memory import freed_memory_kept
from shared_utils.pytorch.models import FastNet, count_parameters
from shared_utils.pytorch.muon import Muon
from shared_utils.study import start

COMMON = {
    "label_smoothing": 0.2, "whiten_bias_epochs": 3, "whiten_eps": 5e-4, "whiten_images": 5000,
    "translate": 2, "widths": (64, 256, 256), "bn_momentum": 0.4, "bn_eps": 1e-12, "tta_views": 6,
}
AIRBENCH94 = {
    **COMMON, "optimizer": "sgd", "epochs": 9.9, "batch_size": 1024,
    "lr": 11.5,                   # per 1024 examples, decoupled from the momentum
    "momentum": 0.85, "weight_decay": 0.0153,   # weight decay per 1024 examples, decoupled from the lr
    "bias_scaler": 64.0,          # BN shifts learn 64x faster (no extra weight decay)
    "schedule": (0.2, 0.23, 0.07),              # triangle: start, where the peak of 1 is, end
    "ema_start_epoch": 3, "ema_every": 5, "ema_decay": 0.95, "ema_power": 3.0,
    "logit_scale": 1 / 9, "unit_head": False,
}
AIRBENCH94_MUON = {
    **COMMON, "optimizer": "muon", "epochs": 8, "batch_size": 2000,
    "muon_lr": 0.24, "muon_momentum": 0.6, "ns_steps": 3,      # the convolution filters
    "bias_lr": 0.053, "head_lr": 0.67, "momentum": 0.85,       # SGD: whitening bias and BN shifts; the head
    "weight_decay": 2e-6,         # per example in the (summed) batch: x batch_size, decoupled from each group's lr
    "logit_scale": None, "unit_head": True,   # head weights of std 1, logits / width (None: 1 / widths[-1])
}
EVAL_BATCH = 1000


def build_network(hp: dict) -> FastNet:
    """FastNet with the airbench options: GELU after the stem, dirac starts, fixed BN scales; with ``unit_head``
    the linear head starts with unit-std weights and its logits are divided by its input width."""
    scale = hp["logit_scale"] if hp.get("logit_scale") is not None else 1 / hp["widths"][-1]
    model = FastNet(tuple(hp["widths"]), whiten=True, logit_scale=scale, bn_momentum=hp["bn_momentum"],
                    bn_weight=False, bn_eps=hp["bn_eps"], stem_gelu=True, dirac=True)
    if hp.get("unit_head"):
        with torch.no_grad():
            model.fc.weight.div_(model.fc.weight.std())
    return model


def forward_macs(model: torch.nn.Module, image_size: int = 32) -> int:
    """Multiply-adds of one image's forward pass through the convolutions and linear layers."""
    total = 0

    def count(layer, _, out):
        nonlocal total
        if isinstance(layer, torch.nn.Conv2d):
            total += out[0].numel() * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        else:
            total += layer.in_features * layer.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, image_size, image_size))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total


def triangle(steps: int, start: float, peak_at: float, end: float) -> list[float]:
    """The learning-rate factor of every step 0..steps: linear from ``start`` to 1 at int(peak_at * steps),
    then linear to ``end`` at the last step."""
    peak = int(peak_at * steps)
    return [start + (1 - start) * i / peak if i < peak else 1 + (end - 1) * (i - peak) / (steps - peak)
            for i in range(steps + 1)]


def muon_study_name(crop_size: int | None, crop_epochs: int | None) -> str:
    """The folder of cifar_best's Muon recipe study: recipe_muon, or recipe_muon_crop<size>x<epochs> for its crop
    variant (projects/cifar_best/recipe.py writes it, benchmarks/cifar_anchor.py reads it back)."""
    return "recipe_muon" + (f"_crop{crop_size}x{crop_epochs}" if crop_size else "")


def random_crops(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A ``size`` x ``size`` window of each image at its own random place (one gather for the whole batch): the
    objects keep their scale, so what a network learns on the crops carries over to whole images."""
    n, c, h, w = images.shape
    oy, ox = torch.randint(0, h - size + 1, (n,), generator=generator), torch.randint(0, w - size + 1, (n,),
                                                                                       generator=generator)
    span = torch.arange(size)
    rows, cols = (oy[:, None] + span).to(images.device), (ox[:, None] + span).to(images.device)
    idx = torch.arange(n, device=images.device)[:, None, None, None]
    chans = torch.arange(c, device=images.device)[None, :, None, None]
    return images[idx, chans, rows[:, None, :, None], cols[:, None, None, :]]


class AlternatingFlipImages:
    """The training images as airbench feeds them: flipped at random once (epoch 0), reflect-padded by
    ``translate`` pixels, then every epoch a fresh random crop per image, and every odd epoch all mirrored."""

    def __init__(self, images: torch.Tensor, translate: int, generator: torch.Generator):
        flip = torch.rand(len(images), generator=generator) < 0.5
        base = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        self.size, self.pad = images.shape[-1], translate
        self.padded = F.pad(base, (translate,) * 4, mode="reflect") if translate else base

    def epoch(self, index: int, generator: torch.Generator) -> torch.Tensor:
        n, r, size = len(self.padded), self.pad, self.size
        if r:
            dy, dx = torch.randint(0, 2 * r + 1, (2, n), generator=generator)
            out = torch.empty((n, self.padded.shape[1], size, size), dtype=self.padded.dtype)
            for sy in range(2 * r + 1):           # one gather per offset pair, no per-image loop
                for sx in range(2 * r + 1):
                    rows = ((dy == sy) & (dx == sx)).nonzero().flatten()
                    out[rows] = self.padded[rows, :, sy:sy + size, sx:sx + size]
        else:
            out = self.padded
        return out.flip(-1) if index % 2 == 1 else out


class WeightAverage:
    """airbench94's averaging: every few steps the weights (and BN statistics) move to an exponential average of
    themselves, which then replaces them, as in Lookahead."""

    def __init__(self, model: torch.nn.Module):
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, decay: float) -> None:
        for key, value in model.state_dict().items():
            if key in self.average:
                self.average[key].lerp_(value, 1 - decay)
                value.copy_(self.average[key])


def tta_logits(model: torch.nn.Module, x: torch.Tensor, views: int = 6) -> torch.Tensor:
    """Averaged logits: 1 view (none), 2 (with the mirror) or 6 (also shifted 1 px up-left and down-right)."""
    def mirrored(inputs):
        return model(inputs) if views == 1 else 0.5 * (model(inputs) + model(inputs.flip(-1)))

    logits = mirrored(x)
    if views < 6:
        return logits
    padded = F.pad(x, (1,) * 4, mode="reflect")
    size = x.shape[-1]
    shifted = 0.5 * (mirrored(padded[..., :size, :size]) + mirrored(padded[..., 2:size + 2, 2:size + 2]))
    return 0.5 * logits + 0.5 * shifted


def score(model, images: torch.Tensor, labels: torch.Tensor, views: int, autocast) -> float:
    model.eval()
    correct = 0
    with torch.no_grad(), autocast():
        for i in range(0, len(images), EVAL_BATCH):
            logits = tta_logits(model, images[i:i + EVAL_BATCH], views)
            correct += int((logits.argmax(1) == labels[i:i + EVAL_BATCH]).sum())
    return correct / len(labels)


def make_optimizer(model: FastNet, hp: dict, batch: int, total_steps: int, whiten_steps: int):
    """The optimizer and its LambdaLR factor per parameter group, for ``hp["optimizer"]`` sgd (airbench94) or
    muon (airbench94_muon). Weight decay is decoupled from each group's learning rate (PyTorch decays by
    lr x weight_decay, so each group's weight_decay is the wanted decay divided by its lr)."""
    shifts = [p for name, p in model.named_parameters() if "stages" in name and p.ndim == 1 and p.requires_grad]
    model.stem.bias.requires_grad_(True)
    if hp["optimizer"] == "sgd":
        kilostep = 1024 * (1 + 1 / (1 - hp["momentum"]))    # how much Nesterov momentum magnifies a step
        lr = hp["lr"] / kilostep
        wd = hp["weight_decay"] * batch / kilostep
        others = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in shifts)]
        bias_lr = lr * hp["bias_scaler"]
        optimizer = torch.optim.SGD([{"params": shifts, "lr": bias_lr, "weight_decay": wd / bias_lr},
                                     {"params": others, "lr": lr, "weight_decay": wd / lr}],
                                    momentum=hp["momentum"], nesterov=True)
        factors = triangle(total_steps, *hp["schedule"])
        return optimizer, [lambda i: factors[min(i, total_steps)]] * 2
    wd = hp["weight_decay"] * batch
    filters = [p for p in model.parameters() if p.ndim == 4 and p.requires_grad]
    sgd = {"momentum": hp["momentum"], "nesterov": True, "orthogonalize": False}
    optimizer = Muon([{"params": filters, "lr": hp["muon_lr"], "momentum": hp["muon_momentum"],
                       "ns_steps": hp["ns_steps"]},
                      {"params": [model.stem.bias], "lr": hp["bias_lr"], "weight_decay": wd / hp["bias_lr"], **sgd},
                      {"params": shifts, "lr": hp["bias_lr"], "weight_decay": wd / hp["bias_lr"], **sgd},
                      {"params": [model.fc.weight], "lr": hp["head_lr"], "weight_decay": wd / hp["head_lr"], **sgd}])
    def linear(i):
        return max(0.0, 1 - i / total_steps)

    def whiten(i):
        return max(0.0, 1 - i / max(1, whiten_steps))

    return optimizer, [linear, whiten, linear, linear]


def resumed_precision(requested: str, here: str, saved: str | None) -> str:
    """The precision a resumed run continues in: the one its epochs so far were trained in. ``requested`` is the
    --precision choice, ``here`` what it means on this machine, ``saved`` what last.pt was trained in (None in
    checkpoints from before this was recorded). A run started in float32 and resumed on a CPU with bfloat16
    units keeps float32 under "auto"; an explicit choice that contradicts the checkpoint is refused."""
    if saved is None or saved == here:
        return here
    if requested == "auto":
        return saved
    raise UserError(f"last.pt was trained in {saved}, and --precision {requested} asks for {here}; resume with "
                    f"--precision auto (continues in {saved}) or start the run afresh without --resume")


def train(config: dict, hp: dict, script_file: str) -> dict:
    """One airbench-style run: train on every training image, score the test set after every epoch (one view)
    and at the end with ``hp["tta_views"]`` views; resumes from last.pt when the runner says so, in the precision
    its epochs so far were trained in (the summary's ``cpu`` names every CPU it ran on). ``config``
    may override ``hp``'s epochs and batch_size."""
    t = start(config, script_file)
    device, run, seed = t.device, t.run, int(config["seed"])
    hp = {**hp, "epochs": float(config.get("epochs", hp["epochs"])),
          "batch_size": int(config.get("batch_size", hp["batch_size"])),
          "crop_size": config.get("crop_size", hp.get("crop_size")),
          "crop_epochs": int(config.get("crop_epochs", hp.get("crop_epochs", 0)))}
    requested = config.get("precision", "auto")
    precision = precision_for(requested, device)
    cpus = [runs.cpu_name()]              # the CPUs a run was trained on, in order: a resume may land elsewhere
    memory = torch.channels_last          # in float32 too: 1.32x the NCHW step on an AMD EPYC Zen 3 (README)

    ds = data.cifar10_from_settings({**config, "val_size": 0})
    train_x = torch.from_numpy(ds.normalize(ds.train.x))
    train_y = torch.from_numpy(ds.train.y.astype(np.int64)).to(device)
    test_x = torch.from_numpy(ds.normalize(ds.test.x)).to(device, memory_format=memory)
    test_y = torch.from_numpy(ds.test.y.astype(np.int64)).to(device)
    generator = torch.Generator().manual_seed(seed)
    batch = min(hp["batch_size"], len(train_x))
    steps_per_epoch = len(train_x) // batch              # the last partial batch is dropped
    total_steps = math.ceil(steps_per_epoch * hp["epochs"])
    whiten_steps = math.ceil(steps_per_epoch * hp["whiten_bias_epochs"])

    setup_started = time.perf_counter()
    model = build_network(hp).to(device, memory_format=memory)
    model.init_whitening(train_x[:hp["whiten_images"]], eps=hp["whiten_eps"], centre=False)
    images = AlternatingFlipImages(train_x, hp["translate"], generator)
    setup_seconds = time.perf_counter() - setup_started

    optimizer, factors = make_optimizer(model, hp, batch, total_steps, whiten_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
    averaging = bool(hp.get("ema_every"))      # the anchor's Lookahead-like average (AIRBENCH94's ema_* keys)
    average, step, first_epoch, history = None, 0, 0, []

    if run.resume and (run / "last.pt").exists():
        state = load_torch(run / "last.pt", map_location=device)
        precision = resumed_precision(requested, precision, state.get("precision"))
        cpus = list(dict.fromkeys(state.get("cpus", []) + cpus))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        if state["average"] is not None:
            average = WeightAverage(model)
            average.average = state["average"]
        step, first_epoch, history = state["step"], state["epoch"] + 1, state["history"]
        setup_seconds = state["setup_seconds"]
        run.replace_metrics(history)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def autocast():
        if dtype is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=dtype)

    for epoch in range(first_epoch, math.ceil(hp["epochs"])):
        started = time.perf_counter()
        inputs = images.epoch(epoch, generator).to(device, memory_format=memory)
        order = torch.randperm(len(inputs), generator=generator).to(device)
        model.train()
        loss_sum = correct = seen = 0
        for b in range(steps_per_epoch):
            model.stem.bias.requires_grad_(step < whiten_steps)
            idx = order[b * batch:(b + 1) * batch]
            x = inputs[idx]
            if hp["crop_size"] and epoch < hp["crop_epochs"]:       # the first epochs on small crops
                x = random_crops(x, hp["crop_size"], generator).contiguous(memory_format=memory)
            with autocast():
                logits = model(x)
                loss = F.cross_entropy(logits.float(), train_y[idx], label_smoothing=hp["label_smoothing"],
                                       reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += float(loss.detach())
            correct += int((logits.argmax(1) == train_y[idx]).sum())
            seen += len(idx)
            if averaging and epoch >= hp["ema_start_epoch"] and step % hp["ema_every"] == 0:
                if average is None:
                    average = WeightAverage(model)
                else:
                    rho = hp["ema_decay"] ** hp["ema_every"] * (step / total_steps) ** hp["ema_power"]
                    average.update(model, rho)
            if step >= total_steps:
                break
        if average is not None:
            average.update(model, 1.0)                      # the averaged weights, once more at the epoch's end
        seconds = time.perf_counter() - started
        test_acc = score(model, test_x, test_y, 1, autocast)
        lrs = [g["lr"] for g in optimizer.param_groups]
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen, "val_acc": test_acc,
               "lr": lrs[1] if hp["optimizer"] == "sgd" else lrs[0], "seconds": seconds}
        history.append(row)
        run.log(**row)
        save_torch(run / "last.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                                     "average": average.average if average is not None else None, "step": step,
                                     "epoch": epoch, "history": history, "setup_seconds": setup_seconds,
                                     "precision": precision, "cpus": cpus})
        if not config.get("quiet"):
            print(f"epoch {epoch + 1}: test {100 * test_acc:.2f}% (one view), {seconds:.1f} s", flush=True)

    tta_started = time.perf_counter()
    test_acc = score(model, test_x, test_y, hp["tta_views"], autocast)
    tta_seconds = time.perf_counter() - tta_started
    by_views = {v: score(model, test_x, test_y, n, autocast) for v, n in (("none", 1), ("flip", 2), ("six", 6))
                if n != hp["tta_views"]}
    by_views[{1: "none", 2: "flip", 6: "six"}[hp["tta_views"]]] = test_acc
    train_seconds = sum(r["seconds"] for r in history)
    return run.summary(test_acc=test_acc, **{f"test_acc_tta_{k}": v for k, v in by_views.items()},
                       counted_seconds=setup_seconds + train_seconds + tta_seconds, setup_seconds=setup_seconds,
                       tta_seconds=tta_seconds, seconds_per_epoch=float(np.median([r["seconds"] for r in history])),
                       steps=step, precision=precision, bf16_probe=bf16_probe_seen(), memory_format="channels_last",
                       huge_pages=os.environ.get("THP_MEM_ALLOC_ENABLE") == "1",
                       freed_memory_kept=freed_memory_kept(), parameters=count_parameters(model),
                       train_images=len(train_x), optimizer=hp["optimizer"], cpu=" then ".join(cpus),
                       device=torch.cuda.get_device_name(device) if device.type == "cuda" else device.type)
