"""Benchmark: what do bfloat16 autocast and channels-last memory buy the CIFAR-10 training step on this CPU?

Times the training step (forward, cross-entropy, backward, SGD step) of one of projects/cifar_best's
models on random 32x32 batches in three settings, in one process, blocks alternating so drift hits
every setting alike: float32 NCHW, float32 channels-last, bfloat16 autocast channels-last (the engine's
``cpu_amp`` + ``cpu_channels_last``, what ``precision: auto`` picks where its probe finds it faster).
Reports the median seconds per 50,000-image epoch and the speed-up ratios; writes
benchmarks/runs/cifar_precision.json with the CPU's name and vector extensions.

The float32 channels-last figure also places this CPU against the issue's anchor recipe (148 s per
epoch on an Intel Xeon where this step took 142 s at --batch-size 512): the ratio of the two steps estimates what that
recipe would take here.

--settings picks some of the three (on a CPU without bfloat16 units bf16 is emulated and only slow);
--compile adds each chosen setting's torch.compile twin (inductor's C++ kernels; the first step of a block,
which compiles, is the untimed warm-up), to measure whether compiling pays on this CPU.

    python benchmarks/cifar_precision.py --model fastnet --blocks 3
    python benchmarks/cifar_precision.py --batch-size 2000 --settings "fp32 NCHW" "fp32 channels-last" --compile
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from projects.cifar_best.training import MODELS, build
from shared_utils import cli, runs
from shared_utils.seed import seed_everything

EPOCH = 50_000
SETTINGS = {"fp32 NCHW": (False, False), "fp32 channels-last": (False, True), "bf16 channels-last": (True, True)}


def step_seconds(model, x, y, amp: bool, steps: int) -> float:
    """Median seconds of one training step over ``steps`` timed steps (after one warm-up step)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    times = []
    for i in range(steps + 1):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None):
    p = cli.parser(__doc__, trains=False, quick={"batch_size": 32, "blocks": 1, "steps": 2})
    p.add_argument("--batch-size", type=cli.bounded_int(1, 8192, " images (a synthetic batch held in memory)"),
                   default=256, help="images per step (the recipe's 256)")
    p.add_argument("--model", choices=list(MODELS), default="fastnet")
    p.add_argument("--blocks", type=cli.positive_int, default=3, help="alternating blocks per setting")
    p.add_argument("--steps", type=cli.positive_int, default=5, help="timed steps per block")
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                   help="which precision / memory-layout settings to time")
    p.add_argument("--compile", action="store_true", help="also time each setting under torch.compile")
    args = cli.parse(p, argv)
    seed_everything(args.seed)
    settings = {name: (*SETTINGS[name], False) for name in args.settings}
    if args.compile:
        settings.update({f"{name} compiled": (*SETTINGS[name], True) for name in args.settings})
    x = torch.randn(args.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))
    per_setting: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.blocks):
        for name, (amp, channels_last, compiled) in settings.items():
            model = build({"model": args.model, "seed": args.seed})
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            model = model.to(memory_format=fmt)
            if compiled:
                model = torch.compile(model)
            per_setting[name].append(step_seconds(model, x.contiguous(memory_format=fmt), y, amp, args.steps))
    epoch = {name: statistics.median(v) * EPOCH / args.batch_size for name, v in per_setting.items()}
    result = {"cpu": runs.cpu_name(), "cpu_features": runs.cpu_features(), "torch_threads": torch.get_num_threads(),
              "model": args.model, "batch_size": args.batch_size, "blocks": args.blocks, "steps": args.steps,
              "step_seconds": per_setting, "seconds_per_50k_epoch": epoch,
              "speedups": {f"{a} over {b}": epoch[b] / epoch[a] for a in epoch for b in epoch if a != b}}
    print(f"{args.model}, batch {args.batch_size}, {runs.cpu_name()} ({', '.join(runs.cpu_features()) or 'no AVX'}):")
    for name, seconds in epoch.items():
        print(f"  {name:>20}: {seconds:7.1f} s per 50,000-image epoch (training step only)")
    fastest = min(epoch, key=epoch.get)
    for name in epoch:
        if name != fastest:
            print(f"  {fastest} is {epoch[name] / epoch[fastest]:.2f}x as fast as {name}")
    runs.atomic_write_json(runs.root(__file__, "cifar_precision.json", args.out), result)
    return result


if __name__ == "__main__":
    cli.run(main)
