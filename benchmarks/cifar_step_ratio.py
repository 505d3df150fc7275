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

    python benchmarks/cifar_step_ratio.py --blocks 3 --steps 2
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


def block(hp: dict, batch: int, steps: int, precision: str, generator: torch.Generator) -> list[float]:
    """Seconds of each of ``steps`` training steps (after one untimed warm-up step) of a fresh network."""
    memory = torch.channels_last          # as the trainer (shared_utils/pytorch/airbench.py), in every precision
    x = torch.randn(batch, 3, 32, 32, generator=generator).contiguous(memory_format=memory)
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
    p.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                   help="auto: bfloat16 on CPUs with bfloat16 units; fp32 everywhere")
    args = cli.parse(p, argv)
    if args.batch_scale > 1:
        p.error(f"argument --batch-scale: at most 1 (the recipes' own batch sizes), got {args.batch_scale}")
    seed_everything(args.seed)
    precision = precision_for(args.precision, torch.device("cpu"))
    generator = torch.Generator().manual_seed(args.seed)
    batches = {name: max(2, round(hp["batch_size"] * args.batch_scale)) for name, hp in RECIPES.items()}
    times: dict[str, list[float]] = {name: [] for name in RECIPES}
    for _ in range(args.blocks):
        for name, hp in RECIPES.items():
            times[name] += block(hp, batches[name], args.steps, precision, generator)
    result = {"cpu": runs.cpu_name(), "cpu_features": runs.cpu_features(), "torch_threads": torch.get_num_threads(),
              "precision": precision, "blocks": args.blocks, "steps": args.steps, "recipes": {}}
    for name, hp in RECIPES.items():
        step = statistics.median(times[name])
        per_epoch, total = steps_of(hp, batches[name])
        result["recipes"][name] = {"batch_size": batches[name], "epochs": hp["epochs"], "steps": total,
                                   "step_seconds": times[name], "median_step_seconds": step,
                                   "epoch_seconds": step * per_epoch, "train_seconds": step * total}
    anchor, recipe = (result["recipes"][name]["train_seconds"] for name in RECIPES)
    result["train_seconds_ratio"] = recipe / anchor
    print(f"{runs.cpu_name()}, {precision}, {torch.get_num_threads()} threads, {args.blocks} alternating blocks of "
          f"{args.steps} steps:")
    for name, r in result["recipes"].items():
        print(f"  {name:>24}: batch {r['batch_size']}, {r['median_step_seconds']:.2f} s a step, "
              f"{r['epoch_seconds']:.1f} s an epoch, {r['steps']} steps = {r['train_seconds']:.0f} s of training")
    print(f"  training time, recipe / anchor: {result['train_seconds_ratio']:.3f}")
    runs.atomic_write_json(runs.root(__file__, "cifar_step_ratio.json", args.out), result)
    return result


if __name__ == "__main__":
    cli.run(main)
