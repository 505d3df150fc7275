"""Benchmark: what does the training of the anchor (airbench94) and of projects/cifar_best's Muon recipe
(airbench94_muon's settings) cost on this CPU, measured so that a shared machine's drift cannot decide it?

Whole runs of the two recipes take an hour or more each here, one after the other, and this VM's speed drifts by
10-50% between hours, so the ratio of two runs' wall times mixes the recipes' costs with the machine's. This
script times their training steps in one process instead, in alternating blocks (anchor, recipe, anchor, ...),
each recipe at its own batch size with its own optimizer (Nesterov SGD with the Lookahead-like averaging, or
Muon for the filters and SGD for the rest), and reports the median step, the seconds of a 50,000-image epoch
(whole batches), the projected training seconds of each recipe (its steps x its median step) and the ratio.
The pixel values do not change a step's cost, so the batches are random; the first step of every block is an
untimed warm-up. Writes benchmarks/runs/cifar_step_ratio.json with the CPU's name.

--crop-size N --crop-epochs K adds a third arm, the recipe's step on N x N crops (recipe.py --crop-size), and
projects the cropped recipe's training: K epochs of crop steps, the rest of whole-image steps.

    python benchmarks/cifar_step_ratio.py --blocks 3 --steps 2
    python benchmarks/cifar_step_ratio.py --blocks 3 --steps 2 --crop-size 24 --crop-epochs 3
"""
from __future__ import annotations

import math
import statistics
import time

import torch
import torch.nn.functional as F

from shared_utils import cli, runs
from shared_utils.pytorch.airbench import AIRBENCH94, AIRBENCH94_MUON, build_network, make_optimizer
from shared_utils.pytorch.device import precision_for
from shared_utils.seed import seed_everything

TRAIN_IMAGES = 50_000
RECIPES = {"anchor (airbench94)": AIRBENCH94, "cifar_best Muon recipe": AIRBENCH94_MUON}


def steps_of(hp: dict, batch: int) -> tuple[int, int]:
    """Steps per epoch (whole batches) and in all, as the trainer counts them."""
    per_epoch = TRAIN_IMAGES // batch
    return per_epoch, math.ceil(per_epoch * hp["epochs"])


def block(hp: dict, batch: int, steps: int, precision: str, generator: torch.Generator, side: int = 32) -> list[float]:
    """Seconds of each of ``steps`` training steps (after one untimed warm-up step) of a fresh network on
    ``side`` x ``side`` images."""
    memory = torch.channels_last          # as the trainer (shared_utils/pytorch/airbench.py), in every precision
    x = torch.randn(batch, 3, side, side, generator=generator).contiguous(memory_format=memory)
    y = torch.randint(0, 10, (batch,), generator=generator)
    model = build_network(hp).to(memory_format=memory)
    model.init_whitening(x[:min(batch, 500)], eps=hp["whiten_eps"], centre=False)
    per_epoch, total = steps_of(hp, batch)
    optimizer, _ = make_optimizer(model, hp, batch, total, math.ceil(per_epoch * hp["whiten_bias_epochs"]))
    model.train()
    times = []
    for i in range(steps + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=hp["label_smoothing"], reduction="sum")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - started)
    return times


def main(argv=None):
    p = cli.parser(__doc__, trains=False, quick={"batch_scale": 0.02, "blocks": 1, "steps": 1})
    p.add_argument("--blocks", type=cli.positive_int, default=3, help="alternating blocks per recipe")
    p.add_argument("--steps", type=cli.positive_int, default=2, help="timed steps per block")
    p.add_argument("--batch-scale", type=cli.positive_float, default=1.0,
                   help="multiply both recipes' batch sizes by this (below 1 only for a smoke test)")
    cli.add_precision(p)
    p.add_argument("--crop-size", type=cli.bounded_int(10, 31, " pixels"), default=None,
                   help="also time the recipe's step on crops of this side (recipe.py --crop-size)")
    p.add_argument("--crop-epochs", type=cli.positive_int, default=None,
                   help="with --crop-size: the epochs the projected cropped recipe trains on crops")
    args = cli.parse(p, argv)
    if args.batch_scale > 1:
        p.error(f"argument --batch-scale: at most 1 (the recipes' own batch sizes), got {args.batch_scale}")
    if (args.crop_size is None) != (args.crop_epochs is None):
        p.error("--crop-size and --crop-epochs go together")
    if args.crop_epochs and args.crop_epochs > AIRBENCH94_MUON["epochs"]:
        p.error(f"--crop-epochs: at most the recipe's {AIRBENCH94_MUON['epochs']} epochs, got {args.crop_epochs}")
    seed_everything(args.seed)
    precision = precision_for(args.precision, torch.device("cpu"))
    generator = torch.Generator().manual_seed(args.seed)
    arms = {name: (hp, 32) for name, hp in RECIPES.items()}
    cropped = f"Muon recipe on {args.crop_size}x{args.crop_size} crops"
    if args.crop_size:
        arms[cropped] = (AIRBENCH94_MUON, args.crop_size)
    batches = {name: max(2, round(hp["batch_size"] * args.batch_scale)) for name, (hp, _) in arms.items()}
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.blocks):
        for name, (hp, side) in arms.items():
            times[name] += block(hp, batches[name], args.steps, precision, generator, side)
    result = {"cpu": runs.cpu_name(), "cpu_features": runs.cpu_features(), "torch_threads": torch.get_num_threads(),
              "precision": precision, "blocks": args.blocks, "steps": args.steps, "recipes": {}}
    for name, (hp, side) in arms.items():
        step = statistics.median(times[name])
        per_epoch, total = steps_of(hp, batches[name])
        result["recipes"][name] = {"batch_size": batches[name], "image_side": side, "epochs": hp["epochs"],
                                   "steps": total, "step_seconds": times[name], "median_step_seconds": step,
                                   "epoch_seconds": step * per_epoch, "train_seconds": step * total}
    anchor, recipe = (result["recipes"][name]["train_seconds"] for name in RECIPES)
    result["train_seconds_ratio"] = recipe / anchor
    if args.crop_size:
        crop, whole = (result["recipes"][name] for name in (cropped, "cifar_best Muon recipe"))
        crop_steps = steps_of(AIRBENCH94_MUON, batches[cropped])[0] * args.crop_epochs
        crop["projected"] = {"crop_epochs": args.crop_epochs, "crop_step_over_whole": crop["median_step_seconds"]
                             / whole["median_step_seconds"],
                             "train_seconds": crop_steps * crop["median_step_seconds"]
                             + (whole["steps"] - crop_steps) * whole["median_step_seconds"]}
        crop["projected"]["train_seconds_ratio"] = crop["projected"]["train_seconds"] / anchor
    print(f"{runs.cpu_name()}, {precision}, {torch.get_num_threads()} threads, {args.blocks} alternating blocks of "
          f"{args.steps} steps:")
    for name, r in result["recipes"].items():
        print(f"  {name:>24}: batch {r['batch_size']}, {r['median_step_seconds']:.2f} s a step, "
              f"{r['epoch_seconds']:.1f} s an epoch, {r['steps']} steps = {r['train_seconds']:.0f} s of training")
    print(f"  training time, recipe / anchor: {result['train_seconds_ratio']:.3f}")
    if args.crop_size:
        projected = result["recipes"][cropped]["projected"]
        print(f"  a crop step costs {projected['crop_step_over_whole']:.3f} of a whole-image step; the recipe with "
              f"its first {args.crop_epochs} epochs on crops: {projected['train_seconds']:.0f} s of training, "
              f"{projected['train_seconds_ratio']:.3f} of the anchor's")
    runs.atomic_write_json(runs.root(__file__, "cifar_step_ratio.json", args.out), result)
    return result


if __name__ == "__main__":
    cli.run(main)
