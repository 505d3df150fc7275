"""Benchmark: the NumPy CNN (section 3) against the identical network in PyTorch on the CPU.

1. Speed: seconds per epoch on full MNIST (55,000 images), the main job's network (Conv -> MaxPool -> ReLU,
   twice, then FC-ReLU-FC, in both frameworks), Adam and batch (section3_cnn/experiment.RECIPE), float32, in
   alternating blocks (NumPy as the main job runs it, its batch split across a worker process; the same split
   across two threads; NumPy on one thread; PyTorch; then again), medians reported. Goal: NumPy at most 0.8x
   PyTorch's time. PyTorch uses all its default threads.
2. Efficiency: achieved GFLOP/s of a NumPy training step (multiply-adds counted from the layer
   shapes) against a plain float32 matrix multiply on this machine.
3. Profile: where a one-thread training step's time goes, layer by layer, forward and backward.
4. The main job as a user runs it: `python section3_cnn/train_mnist_numpy.py --epochs 5` in a
   subprocess: wall time, peak resident memory (its own plus its worker process's), test accuracy.
Writes benchmarks/runs/cnn_numpy_vs_torch.json.

    python benchmarks/cnn_numpy_vs_torch.py
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.optim import Adam
from section2_optimization.trainer import fit
from section3_cnn.layers import Conv2D
from section2_optimization.layers import Linear
from section3_cnn.model import build_cnn
from section3_cnn.experiment import RECIPE
from shared_utils import cli, data, runs

REPO = Path(__file__).resolve().parents[1]


def torch_cnn(channels, hidden):
    """build_cnn's network in torch, in its order: max pooling before ReLU (the same function; for torch too
    the cheaper order, 0-5% less time per epoch here)."""
    import torch.nn as nn

    c1, c2 = channels
    return nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Conv2d(c1, c2, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(c2 * 49, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def torch_epoch(model, optimizer, x, y, batch_size, seed) -> float:
    import torch

    started = time.perf_counter()
    model.train()
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        logits = model(x[idx])
        torch.nn.functional.cross_entropy(logits, y[idx]).backward()
        optimizer.step()
        _ = (logits.argmax(1) == y[idx]).float().mean().item()  # the NumPy loop tracks accuracy too
    return time.perf_counter() - started


def step_flops(model, batch: int) -> float:
    """FLOPs of one training step: 2 per multiply-add; backward = weight grads + input grads
    (none for the first layer, which has no use for them)."""
    x = np.zeros((batch, 1, 28, 28), np.float32)
    total, first = 0.0, True
    for layer in model:
        out = layer.forward(x)
        if isinstance(layer, (Conv2D, Linear)):
            k = layer.weight.data.size
            positions = out.size / out.shape[-1]     # output pixels times images
            macs = positions * k
            total += 2 * macs * (2 if first else 3)  # forward, weight grad, (input grad)
            first = False
        x = out
    return total


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.T.copy()
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def layer_profile(model, x, y, batch: int, steps: int = 50) -> list[dict]:
    optimizer = Adam(model.parameters(), lr=1e-3)
    model.requires_input_grad = False
    fwd, bwd = np.zeros(len(model)), np.zeros(len(model))
    first = next(i for i, layer in enumerate(model) if layer.parameters())
    loss_t = opt_t = 0.0
    for s in range(steps):
        xb, yb = x[s * batch:(s + 1) * batch], y[s * batch:(s + 1) * batch]
        h = xb
        for i, layer in enumerate(model):
            t = time.perf_counter()
            h = layer.forward(h)
            fwd[i] += time.perf_counter() - t
        t = time.perf_counter()
        _, g = softmax_cross_entropy(h, yb)
        loss_t += time.perf_counter() - t
        for i in range(len(model) - 1, first - 1, -1):
            t = time.perf_counter()
            g = model[i].backward_params(g) if i == first else model[i].backward(g)
            bwd[i] += time.perf_counter() - t
        t = time.perf_counter()
        optimizer.step()
        opt_t += time.perf_counter() - t
    rows = [{"layer": repr(layer), "forward_ms": 1e3 * fwd[i] / steps, "backward_ms": 1e3 * bwd[i] / steps}
            for i, layer in enumerate(model)]
    rows += [{"layer": "softmax cross-entropy", "forward_ms": 1e3 * loss_t / steps, "backward_ms": 0.0},
             {"layer": "Adam step", "forward_ms": 0.0, "backward_ms": 1e3 * opt_t / steps}]
    return rows


def main(argv=None):
    p = cli.parser(__doc__, epochs=4, batch_size=RECIPE["batch_size"], lr=RECIPE["lr"],
                   quick={"epochs": 2, "limit_train": 6000})
    p.add_argument("--channels", type=cli.channels, nargs=2, default=list(RECIPE["channels"]))
    p.add_argument("--hidden", type=cli.width, default=RECIPE["hidden"])
    p.add_argument("--threads", type=cli.positive_int, default=RECIPE["threads"],
                   help="NumPy shards per batch (DataParallel); the main job's by default")
    p.add_argument("--backend", choices=("process", "thread"), default=RECIPE["backend"],
                   help="where the extra shards run (the main job's by default); the other backend is timed too")
    p.add_argument("--skip-main-job", action="store_true", help="do not time the 5-epoch main job")
    args = cli.parse(p, argv)
    import torch

    ds = data.mnist(args.data_dir, limit=args.limit_train, val_size=5000 if not args.limit_train else 1000,
                    seed=args.seed, quiet=args.quiet)
    x, y = ds.arrays("train")
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    torch.manual_seed(args.seed)
    tmodel = torch_cnn(args.channels, args.hidden)
    toptimizer = torch.optim.Adam(tmodel.parameters(), lr=args.lr)
    other = "thread" if args.backend == "process" else "process"
    numpy_runs = ({"numpy": (args.threads, args.backend), f"numpy_{other}_backend": (args.threads, other),
                   "numpy_1_thread": (1, "thread")} if args.threads > 1 else {"numpy": (1, "thread")})
    models = {}
    for name in numpy_runs:
        model = build_cnn(channels=tuple(args.channels), hidden=args.hidden, seed=args.seed)
        models[name] = (model, Adam(model.parameters(), lr=args.lr))
    seconds = {name: [] for name in [*numpy_runs, "torch"]}
    half = (args.epochs + 1) // 2
    for block in (range(0, half), range(half, args.epochs)):  # A B C A B C: each sees early and late machine load
        for name, (threads, backend) in numpy_runs.items():
            model, optimizer = models[name]
            for epoch in block:
                h = fit(model, softmax_cross_entropy, optimizer, (x, y), None, epochs=1, batch_size=args.batch_size,
                        seed=args.seed + epoch, checkpoint=None, quiet=True, threads=threads, backend=backend)
                seconds[name].append(h.rows[-1]["seconds"])
        for epoch in block:
            seconds["torch"].append(torch_epoch(tmodel, toptimizer, tx, ty, args.batch_size, args.seed + epoch))
        if not args.quiet:
            print("block done: " + ", ".join(f"{k} {v[-1]:.2f} s/epoch" for k, v in seconds.items()))
    medians = {name: statistics.median(v) for name, v in seconds.items()}
    np_med, t_med = medians["numpy"], medians["torch"]
    model = models["numpy"][0]
    steps_per_epoch = -(-len(y) // args.batch_size)
    flops = step_flops(model, args.batch_size)
    achieved = flops * steps_per_epoch / np_med / 1e9
    peak = matmul_gflops()
    profile = layer_profile(model, x, y, args.batch_size)
    result = {
        "machine": {"cpu": runs.cpu_name(), "vector_extensions": runs.cpu_features(), "numpy_blas": runs.blas_kernels(),
                    "blas_settings": runs.blas_settings(),
                    "platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "versions": {"numpy": np.__version__, "torch": torch.__version__},
        "config": {"channels": args.channels, "hidden": args.hidden, "batch_size": args.batch_size,
                   "optimizer": "Adam", "train_images": int(len(y)), "epochs_each": args.epochs,
                   "numpy_threads": args.threads, "numpy_backend": args.backend},
        "numpy_seconds_per_epoch": seconds["numpy"], "torch_seconds_per_epoch": seconds["torch"],
        "numpy_1_thread_seconds_per_epoch": seconds.get("numpy_1_thread"),
        f"numpy_{other}_backend_seconds_per_epoch": seconds.get(f"numpy_{other}_backend"),
        "numpy_median_s": np_med, "torch_median_s": t_med, "time_ratio_numpy_over_torch": np_med / t_med,
        "numpy_1_thread_median_s": medians.get("numpy_1_thread"),
        "training_step_gflop": flops / 1e9, "achieved_gflops": achieved, "matmul_gflops": peak,
        "share_of_matmul_rate": achieved / peak, "profile_ms_per_step": profile,
    }
    print(f"machine: {runs.cpu_name()}, {os.cpu_count()} CPUs, {', '.join(runs.cpu_features()) or 'no AVX2'}; "
          f"NumPy's BLAS: {'; '.join(runs.blas_kernels()) or 'none found'}")
    if runs.blas_settings():
        print("BLAS settings from the environment (they choose the kernels above): "
              + ", ".join(f"{k}={v}" for k, v in runs.blas_settings().items()))
    print(f"NumPy  : {np_med:.2f} s/epoch (median of {len(seconds['numpy'])}, {args.threads} shards, "
          f"{args.backend} backend)")
    if f"numpy_{other}_backend" in medians:
        print(f"NumPy  : {medians[f'numpy_{other}_backend']:.2f} s/epoch with the {other} backend "
              f"({medians[f'numpy_{other}_backend'] / np_med:.2f}x)")
    if "numpy_1_thread" in medians:
        print(f"NumPy  : {medians['numpy_1_thread']:.2f} s/epoch on one thread "
              f"({medians['numpy_1_thread'] / np_med:.2f}x the threaded time)")
    print(f"PyTorch: {t_med:.2f} s/epoch (median of {len(seconds['torch'])}, {torch.get_num_threads()} threads)")
    print(f"time ratio NumPy / PyTorch = {np_med / t_med:.2f} (goal <= 0.8)")
    print(f"NumPy training: {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of a 1024^3 float32 matmul ({peak:.0f} GFLOP/s)")
    total = sum(r["forward_ms"] + r["backward_ms"] for r in profile)
    print(f"profile of one single-thread step ({total:.2f} ms):")
    for r in profile:
        ms = r["forward_ms"] + r["backward_ms"]
        print(f"  {r['layer'][:44]:44s} fwd {r['forward_ms']:6.2f} ms  bwd {r['backward_ms']:6.2f} ms  {ms / total:5.1%}")
    if not args.skip_main_job:
        out = runs.root(__file__, "main_job", args.out)
        cmd = [sys.executable, str(REPO / "section3_cnn" / "train_mnist_numpy.py"), "--epochs", "5", "--quiet",
               "--out", str(out)] + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
        started = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - started
        summary = runs.read_summary(out / "mnist_numpy")
        # the child's own VmHWM (rusage of a child counts this process), plus its worker process's: an upper
        # bound on what both held at once
        peak_rss_mb = summary["peak_rss_mb"] + summary.get("worker_peak_rss_mb", 0.0)
        result["main_job"] = {"command": "python section3_cnn/train_mnist_numpy.py --epochs 5", "wall_s": wall,
                              "peak_rss_mb": peak_rss_mb, "test_acc": summary["test_acc"],
                              "test_acc_single_view": summary.get("test_acc_single_view")}
        print(f"main job: {wall:.1f} s wall (goal <= 30), peak RSS {peak_rss_mb:.0f} MB with its worker (goal < 1024), "
              f"test accuracy {summary['test_acc']:.4f} (seed 0; goal: mean of seeds 0-2 >= 0.993)")
    path = runs.atomic_write_json(runs.root(__file__, "cnn_numpy_vs_torch.json", args.out), result)
    print(f"-> {path}")
    return result


if __name__ == "__main__":
    cli.run(main)
