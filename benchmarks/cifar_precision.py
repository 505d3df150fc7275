"""Benchmark: what do bfloat16 autocast and channels-last memory buy the CIFAR-10 training step on this CPU?

Times the training step (forward, cross-entropy, backward, SGD step) of one of projects/cifar_best's
models on random 32x32 batches in three settings, in one process, blocks alternating so drift hits
every setting alike: float32 NCHW, float32 channels-last, bfloat16 autocast channels-last (the engine's
``cpu_amp`` + ``cpu_channels_last``, what ``precision: auto`` picks on CPUs with AVX512-BF16 or AMX).
Reports the median seconds per 50,000-image epoch and the speed-up ratios; writes
benchmarks/runs/cifar_precision.json with the CPU's name and vector extensions.

The float32 channels-last figure also places this CPU against the issue's anchor recipe (148 s per
epoch on an Intel Xeon where this step took 142 s at --batch-size 512): the ratio of the two steps estimates what that
recipe would take here.

    python benchmarks/cifar_precision.py --model fastnet --blocks 3
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
    args = cli.parse(p, argv)
    seed_everything(args.seed)
    x = torch.randn(args.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))
    per_setting: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.blocks):
        for name, (amp, channels_last) in SETTINGS.items():
            model = build({"model": args.model, "seed": args.seed})
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            model = model.to(memory_format=fmt)
            per_setting[name].append(step_seconds(model, x.contiguous(memory_format=fmt), y, amp, args.steps))
    epoch = {name: statistics.median(v) * EPOCH / args.batch_size for name, v in per_setting.items()}
    result = {"cpu": runs.cpu_name(), "cpu_features": runs.cpu_features(), "torch_threads": torch.get_num_threads(),
              "model": args.model, "batch_size": args.batch_size, "blocks": args.blocks, "steps": args.steps,
              "step_seconds": per_setting, "seconds_per_50k_epoch": epoch,
              "speedup_bf16_over_fp32_channels_last": epoch["fp32 channels-last"] / epoch["bf16 channels-last"],
              "speedup_channels_last_fp32": epoch["fp32 NCHW"] / epoch["fp32 channels-last"]}
    print(f"{args.model}, batch {args.batch_size}, {runs.cpu_name()} ({', '.join(runs.cpu_features()) or 'no AVX'}):")
    for name, seconds in epoch.items():
        print(f"  {name:>20}: {seconds:7.1f} s per 50,000-image epoch (training step only)")
    print(f"  bfloat16 speed-up over float32 (channels-last): {result['speedup_bf16_over_fp32_channels_last']:.2f}x")
    runs.atomic_write_json(runs.root(__file__, "cifar_precision.json", args.out), result)
    return result


if __name__ == "__main__":
    cli.run(main)
