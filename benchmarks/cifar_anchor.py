"""The anchor: the fastest published CIFAR-10 recipe, airbench94 (Jordan 2024, "94% on CIFAR-10 in 3.29
Seconds on a Single GPU", arXiv:2404.00498: 94.01% mean accuracy in 3.83 s on an A100, 1.97M parameters,
0.36 PFLOPs), written here from the paper and its description so that projects/cifar_best can be measured
against it on the same machine, data and precision.

What the recipe is (HP below holds the numbers):
  network    a 2x2 patch-whitening convolution (24 filters: the training patches' eigenvectors scaled to unit
             variance and their negations; weights frozen, bias trained for the first 3 epochs), GELU, then
             three stages of conv3x3 -> max pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU of widths 64, 256,
             256, a 3x3 max pool, a linear layer without bias and logits scaled by 1/9. Convolutions start as
             identity in their first C_in filters (dirac); BatchNorm has eps 1e-12, running-average momentum
             0.6 (PyTorch's 0.4) and fixed scales, only its shifts train. (shared_utils FastNet with these options.)
  data       the training images flipped at random once, then all flipped together every other epoch
             (alternating flip), and translated up to 2 pixels (reflect padding) afresh every epoch.
  training   Nesterov SGD, batch 1024, 9.9 epochs (ceil(48 x 9.9) = 476 steps), the summed label-smoothed
             (0.2) cross-entropy; learning rate 11.5 and weight decay 0.0153 per 1024 examples, decoupled from
             the momentum (0.85) as in the paper; BN shifts at 64x the learning rate; a triangular schedule
             (0.2 -> 1 at 23% of the steps -> 0.07). From epoch 3, every 5 steps the weights are replaced by
             an exponential average of themselves (decay 0.95^5 x (step / steps)^3: Lookahead-like).
  evaluation six views: the image and its mirror, each also shifted one pixel up-left and down-right
             (reflect padding), averaged as 1/2 (unshifted pair) + 1/4 + 1/4 (the shifted pairs).
Its time is counted as the paper counts it: the whitening set-up, the training steps and the final test-time
augmented evaluation, not the per-epoch test scores (which we log for the curve).

Precision as projects/cifar_best: bfloat16 autocast with channels-last on a CPU with bfloat16 units, float16
autocast with channels-last on CUDA, float32 elsewhere (--precision fp32 forces it).

    python benchmarks/cifar_anchor.py --seeds 0                  # the anchor alone
    python benchmarks/cifar_anchor.py --seeds 0 1 2 --with-recipe   # then cifar_best's recipe, and the table

--with-recipe runs `projects/cifar_best/recipe.py` with the same seeds and precision after the anchor, in a
fresh process, and writes comparison.md: accuracy (mean and 95% CI), wall seconds per run, training seconds
per epoch and the ratio of times. Runs go to benchmarks/runs/cifar_anchor/; --resume continues an interrupted
run from its last finished epoch.
"""
from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared_utils import cli, data, runs, stats
from shared_utils.errors import UserError
from shared_utils.pytorch.checkpoint import load_torch, save_torch
from shared_utils.pytorch.device import precision_for
from shared_utils.pytorch.models import FastNet, count_parameters
from shared_utils.study import Study, start

REPO = Path(__file__).resolve().parents[1]

HP = {
    "epochs": 9.9, "batch_size": 1024,
    "lr": 11.5,                   # per 1024 examples, decoupled from the momentum
    "momentum": 0.85, "weight_decay": 0.0153,   # weight decay per 1024 examples, decoupled from the lr
    "bias_scaler": 64.0,          # BN shifts learn 64x faster (no extra weight decay)
    "label_smoothing": 0.2,
    "schedule": (0.2, 0.23, 0.07),              # triangle: start, where the peak of 1 is, end
    "ema_start_epoch": 3, "ema_every": 5, "ema_decay": 0.95, "ema_power": 3.0,
    "whiten_bias_epochs": 3, "whiten_eps": 5e-4, "whiten_images": 5000,
    "translate": 2, "widths": (64, 256, 256), "bn_momentum": 0.4, "bn_eps": 1e-12, "logit_scale": 1 / 9,
}
PAPER = {"parameters": 1.97e6, "petaflops": 0.36, "accuracy": 0.9401, "a100_seconds": 3.83}
QUICK = {"epochs": 1, "limit_train": 1024, "test_subset": 500, "batch_size": 512}   # two steps
EVAL_BATCH = 1000


def build_anchor() -> FastNet:
    """airbench94's network: FastNet 64/256/256 with its GELU after the stem, dirac starts, fixed BN scales."""
    return FastNet(HP["widths"], whiten=True, logit_scale=HP["logit_scale"], bn_momentum=HP["bn_momentum"],
                   bn_weight=False, bn_eps=HP["bn_eps"], stem_gelu=True, dirac=True)


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


class AnchorImages:
    """The training images as the anchor feeds them: flipped at random once (epoch 0), reflect-padded by
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
    """airbench's averaging: every few steps the weights (and BN statistics) move to an exponential average of
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


def trial(config: dict) -> dict:
    """One anchor run: train on every training image, score the test set after every epoch (one view) and at
    the end with six views; resumes from last.pt when the runner says so."""
    t = start(config, __file__)
    device, run, seed = t.device, t.run, int(config["seed"])
    hp = {**HP, "epochs": float(config["epochs"])}
    precision = precision_for(config.get("precision", "auto"), device)
    fast = precision != "fp32"
    memory = torch.channels_last if fast else torch.contiguous_format
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def autocast():
        if dtype is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=dtype)

    ds = data.cifar10_from_settings({**config, "val_size": 0})
    train_x = torch.from_numpy(ds.normalize(ds.train.x))
    train_y = torch.from_numpy(ds.train.y.astype(np.int64)).to(device)
    test_x = torch.from_numpy(ds.normalize(ds.test.x)).to(device, memory_format=memory)
    test_y = torch.from_numpy(ds.test.y.astype(np.int64)).to(device)
    generator = torch.Generator().manual_seed(seed)
    batch = min(int(config["batch_size"]), len(train_x))
    steps_per_epoch = len(train_x) // batch              # the last partial batch is dropped
    total_steps = math.ceil(steps_per_epoch * hp["epochs"])

    setup_started = time.perf_counter()
    model = build_anchor().to(device, memory_format=memory)
    model.init_whitening(train_x[:hp["whiten_images"]], eps=hp["whiten_eps"], centre=False)
    images = AnchorImages(train_x, hp["translate"], generator)
    setup_seconds = time.perf_counter() - setup_started

    kilostep = 1024 * (1 + 1 / (1 - hp["momentum"]))    # how much Nesterov momentum magnifies a step
    lr = hp["lr"] / kilostep
    wd = hp["weight_decay"] * batch / kilostep
    shifts = [p for name, p in model.named_parameters() if "stages" in name and p.ndim == 1 and p.requires_grad]
    model.stem.bias.requires_grad_(True)
    others = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in shifts)]
    # PyTorch's SGD decays by lr x weight_decay: dividing by each group's lr makes the decay wd for both
    bias_lr = lr * hp["bias_scaler"]
    optimizer = torch.optim.SGD([{"params": shifts, "lr": bias_lr, "weight_decay": wd / bias_lr},
                                 {"params": others, "lr": lr, "weight_decay": wd / lr}],
                                momentum=hp["momentum"], nesterov=True)
    factors = triangle(total_steps, *hp["schedule"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: factors[min(i, total_steps)])
    average, step, first_epoch, history = None, 0, 0, []

    if run.resume and (run / "last.pt").exists():
        state = load_torch(run / "last.pt", map_location=device)
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

    for epoch in range(first_epoch, math.ceil(hp["epochs"])):
        model.stem.bias.requires_grad_(epoch < hp["whiten_bias_epochs"])
        started = time.perf_counter()
        inputs = images.epoch(epoch, generator).to(device, memory_format=memory)
        order = torch.randperm(len(inputs), generator=generator).to(device)
        model.train()
        loss_sum = correct = seen = 0
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            with autocast():
                logits = model(inputs[idx])
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
            if epoch >= hp["ema_start_epoch"] and step % hp["ema_every"] == 0:
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
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen, "val_acc": test_acc,
               "lr": factors[min(step, total_steps)] * lr, "seconds": seconds}
        history.append(row)
        run.log(**row)
        save_torch(run / "last.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                                     "average": average.average if average is not None else None, "step": step,
                                     "epoch": epoch, "history": history, "setup_seconds": setup_seconds})
        if not config.get("quiet"):
            print(f"epoch {epoch + 1}: test {100 * test_acc:.2f}% (one view), {seconds:.1f} s", flush=True)

    tta_started = time.perf_counter()
    test_acc = score(model, test_x, test_y, 6, autocast)
    tta_seconds = time.perf_counter() - tta_started
    by_views = {"none": score(model, test_x, test_y, 1, autocast), "flip": score(model, test_x, test_y, 2, autocast)}
    train_seconds = sum(r["seconds"] for r in history)
    return run.summary(test_acc=test_acc, test_acc_tta_none=by_views["none"], test_acc_tta_flip=by_views["flip"],
                       anchor_seconds=setup_seconds + train_seconds + tta_seconds, setup_seconds=setup_seconds,
                       tta_seconds=tta_seconds, seconds_per_epoch=float(np.median([r["seconds"] for r in history])),
                       steps=step, precision=precision, parameters=count_parameters(model),
                       train_images=len(train_x), cpu=runs.cpu_name())


def recipe_folder(out: Path) -> Path:
    return out / "cifar_best" / "recipe" / "recipe"


def run_recipe(args, out: Path) -> None:
    """projects/cifar_best/recipe.py with the same seeds, precision and data, in a fresh process."""
    cmd = [sys.executable, str(REPO / "projects" / "cifar_best" / "recipe.py"), "--seeds", *map(str, args.seeds),
           "--precision", args.precision, "--out", str(out / "cifar_best"), "--quiet"]
    for flag, value in (("--data-dir", args.data_dir), ("--limit-train", args.limit_train),
                        ("--test-subset", args.test_subset), ("--device", args.device)):
        if value is not None:
            cmd += [flag, str(value)]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--resume"] if args.resume else []
    if subprocess.run(cmd).returncode != 0:
        raise UserError(f"cifar_best's recipe stopped (command: {' '.join(cmd)}); fix what it said and rerun "
                        "with --resume")


def comparison(anchor: Path, recipe: Path, out: Path) -> list[list[str]]:
    """The table: accuracy (mean and 95% CI), wall seconds per run, training seconds per epoch, and the
    recipe's wall time as a multiple of the anchor's."""
    def read(folder):
        summaries = [runs.read_summary(p) for p in sorted(folder.glob("seed_*")) if (p / "summary.json").exists()]
        per_epoch = [float(np.median(runs.read_metrics(p)["seconds"])) for p in sorted(folder.glob("seed_*"))
                     if (p / "summary.json").exists()]
        return summaries, per_epoch

    rows, walls = [], {}
    for name, folder in (("anchor (airbench94)", anchor), ("cifar_best recipe", recipe)):
        summaries, per_epoch = read(folder)
        if not summaries:
            raise UserError(f"no finished run under {folder}; run this command again with --resume")
        acc = [100 * s["test_acc"] for s in summaries]
        walls[name] = [s["wall_time_s"] for s in summaries]
        rows.append([name, str(len(summaries)), stats.ci_cell(acc), f"{np.mean(walls[name]):,.0f}",
                     f"{np.median(per_epoch):.1f}", summaries[0].get("precision", "?"), summaries[0].get("cpu", "?")])
    ratio = np.mean(walls["cifar_best recipe"]) / np.mean(walls["anchor (airbench94)"])
    rows.append(["recipe / anchor wall time", "", "", f"{ratio:.2f}x", "", "", ""])
    stats.write_table(["run", "seeds", "test accuracy % (mean ± std [95% CI])", "wall s per run",
                       "train s per epoch (median)", "precision", "CPU"], rows, out / "comparison",
                      caption="cifar_best against the anchor, one after the other on this machine (goal: at "
                              "least the anchor's accuracy in at most 0.8x its wall time)")
    return rows


def main(argv=None):
    p = cli.parser(__doc__, seeds=True, quick=QUICK, trains=False)
    p.add_argument("--epochs", type=cli.positive_float, default=HP["epochs"],
                   help="passes over the training set (fractions allowed: the paper's 9.9)")
    p.add_argument("--batch-size", type=cli.positive_int, default=HP["batch_size"], help="examples per update")
    p.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                   help="auto: bfloat16 on CPUs with bfloat16 units, float16 on CUDA; fp32 everywhere")
    p.add_argument("--test-subset", type=cli.positive_int, default=None, help="score on this many test images")
    p.add_argument("--with-recipe", action="store_true",
                   help="then run projects/cifar_best/recipe.py with the same seeds and precision, and compare")
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    settings = {**cli.data_settings(args), "val_size": 0}
    data.cifar10_from_settings(settings)            # no CIFAR-10 and no network: stop before training
    out = runs.root(__file__, "cifar_anchor", args.out)
    study = Study("anchor", trial, {"airbench94": {}}, args.seeds, out,
                  base={**settings, "epochs": args.epochs, "batch_size": args.batch_size, "precision": args.precision},
                  resume=args.resume)
    result = study.run_or_load(args)
    values = result.values("test_acc", 100)
    print(f"anchor test accuracy (six views): {stats.summarize(values['airbench94'])}")
    result.finish()
    if args.with_recipe:
        run_recipe(args, out)
        for row in comparison(study.path / "airbench94", recipe_folder(out), out):
            print(" | ".join(row))
        print(f"-> {out / 'comparison.md'}")
    return values


if __name__ == "__main__":
    cli.run(main)
