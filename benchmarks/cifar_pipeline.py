"""Benchmark: what does the in-memory input pipeline cost next to the model?

Trains the same network for the same steps twice in one process: once fed by TensorLoader
(uint8 images on the device; per-batch gather, crop + flip augmentation and normalisation as
tensor operations), once on batches made and normalised in advance (the pipeline's cost
removed). The share of training time spent in the pipeline is 1 - (pre-made time / loader
time); the goal is under 10%. Because two training runs differ by more than the pipeline
costs, the pipeline is also timed alone, as a share of the training time per image. Blocks alternate (loader, pre-made, loader, pre-made) and
medians are reported. Writes benchmarks/runs/cifar_pipeline.json.

    python benchmarks/cifar_pipeline.py --model resnet --limit-train 5500
"""
from __future__ import annotations

import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from section4_transfer.experiment import add_cifar_flags, load_cifar
from shared_utils.pytorch.models import build_model
from shared_utils.pytorch import device as devices
from shared_utils import cli, runs
from shared_utils.pytorch.pipeline import TensorLoader, horizontal_flip, random_crop


def timed_steps(model, optimizer, batches) -> tuple[float, int]:
    model.train()
    started, images = time.perf_counter(), 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        images += len(y)
    return time.perf_counter() - started, images


def main(argv=None):
    p = cli.parser(__doc__, epochs=2, batch_size=128, lr=0.05, quick={"epochs": 1, "limit_train": 1012})
    p.add_argument("--model", choices=["cnn", "resnet", "mlp"], default="resnet")
    add_cifar_flags(p, val_size=500)
    args = cli.parse(p, argv)
    device = devices.resolve(args.device)
    ds = load_cifar(cli.data_settings(args))
    torch.manual_seed(args.seed)
    model = build_model(args.model).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loader = TensorLoader(ds.train.x, ds.train.y, batch_size=args.batch_size, mean=ds.mean, std=ds.std,
                          augment=[random_crop(4), horizontal_flip()], device=device, seed=args.seed)
    premade = [(x.clone(), y.clone()) for x, y in loader]   # the same batches, computed once beforehand
    times = {"loader": [], "premade": []}
    for _ in range(args.epochs):
        for name, source in (("loader", loader), ("premade", premade)):
            seconds, images = timed_steps(model, optimizer, source)
            times[name].append(seconds)
    loader_s, premade_s = statistics.median(times["loader"]), statistics.median(times["premade"])
    share = 1 - premade_s / loader_s
    images = len(ds.train)
    started = time.perf_counter()
    for _ in loader:
        pass
    pipeline_only = time.perf_counter() - started
    alone_share = (images / pipeline_only) ** -1 / (loader_s / images)   # pipeline s/image over training s/image
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": str(device),
                          "torch_threads": torch.get_num_threads()},
              "model": args.model, "train_images": images, "batch_size": args.batch_size,
              "loader_seconds": times["loader"], "premade_seconds": times["premade"],
              "images_per_s_loader": images / loader_s, "images_per_s_premade": images / premade_s,
              "pipeline_share_of_training_time": share, "pipeline_alone_images_per_s": images / pipeline_only,
              "pipeline_alone_share_of_training_time": alone_share}
    print(f"{args.model} on {device}: {images / loader_s:.0f} images/s with the loader, "
          f"{images / premade_s:.0f} images/s on pre-made batches")
    print(f"pipeline share of training time, from the difference: {share:.1%} (goal < 10%; noise can make it "
          f"negative)")
    print(f"the pipeline alone produces {images / pipeline_only:.0f} images/s: {alone_share:.1%} of the training "
          "time per image")
    runs.atomic_write_json(runs.root(__file__, "cifar_pipeline.json", args.out), result)
    return result


if __name__ == "__main__":
    cli.run(main)
