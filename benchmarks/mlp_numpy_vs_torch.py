"""Benchmark: the section 2 layer library vs PyTorch on the CPU, same MLP, optimizer and batches.

MLP 784-256-128-10 (ReLU), Adam lr 1e-3 with cosine decay per step, batch 64, float32, on full MNIST (55,000 train /
5,000 validation / 10,000 test). Prints test accuracy after --epochs and the median seconds
per epoch of each framework, measured in this one process in alternating blocks
(NumPy, PyTorch, NumPy, PyTorch), plus their ratio
(goal: NumPy <= 0.6x PyTorch's time). Writes benchmarks/runs/mlp_numpy_vs_torch.json.

    python benchmarks/mlp_numpy_vs_torch.py --epochs 10
"""
from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from section2_optimization import layers
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.optim import Adam, CosineAnnealingLR
from section2_optimization.trainer import evaluate, fit
from shared_utils import cli, data, runs

SIZES = [784, 256, 128, 10]


def total_steps(args, n_train: int) -> int:
    return args.epochs * -(-n_train // args.batch_size)


class NumpyRunner:
    def __init__(self, args, n_train):
        self.model = layers.mlp(SIZES, activation="relu", seed=args.seed)
        self.optimizer = Adam(self.model.parameters(), lr=args.lr)
        self.schedule = CosineAnnealingLR(self.optimizer, T_max=total_steps(args, n_train))
        self.args = args

    def epoch(self, epoch, train, val) -> float:
        history = fit(self.model, softmax_cross_entropy, self.optimizer, train, val, epochs=1,
                      batch_size=self.args.batch_size, seed=self.args.seed + epoch, quiet=True, checkpoint=None,
                      scheduler=self.schedule, schedule_per="batch", threads=self.args.threads)
        return history.rows[-1]["seconds"]

    def test_acc(self, test) -> float:
        return evaluate(self.model, softmax_cross_entropy, *test)[1]


class TorchRunner:
    def __init__(self, args, n_train):
        import torch

        self.torch = torch
        torch.manual_seed(args.seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                         torch.nn.ReLU(), torch.nn.Linear(128, 10))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=total_steps(args, n_train))
        self.args = args

    def epoch(self, epoch, train, val) -> float:
        torch, F = self.torch, self.torch.nn.functional
        x, y = torch.from_numpy(train[0]), torch.from_numpy(train[1])
        started = time.perf_counter()
        self.model.train()
        order = torch.from_numpy(np.random.default_rng(self.args.seed + epoch).permutation(len(y)))  # same batches
        for start in range(0, len(y), self.args.batch_size):
            idx = order[start:start + self.args.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            _ = (logits.argmax(1) == y[idx]).float().mean().item()  # the NumPy loop tracks accuracy too
        self.model.eval()
        with torch.no_grad():
            F.cross_entropy(self.model(torch.from_numpy(val[0])), torch.from_numpy(val[1])).item()
        return time.perf_counter() - started

    def test_acc(self, test) -> float:
        with self.torch.no_grad():
            return float((self.model(self.torch.from_numpy(test[0])).argmax(1).numpy() == test[1]).mean())


def main(argv=None):
    p = cli.parser(__doc__, epochs=10, batch_size=64, lr=1e-3, quick={"epochs": 1, "limit_train": 6000})
    p.add_argument("--threads", type=cli.positive_int, default=1, help="NumPy threads per batch (DataParallel)")
    args = cli.parse(p, argv)
    ds = data.mnist(args.data_dir, limit=args.limit_train, val_size=5000 if not args.limit_train else 1000,
                    seed=args.seed, quiet=args.quiet)
    train, val, test = (ds.arrays(s, flatten=True) for s in ("train", "val", "test"))
    runners = {"numpy": NumpyRunner(args, len(train[1])), "torch": TorchRunner(args, len(train[1]))}
    seconds = {name: [] for name in runners}
    # Two blocks per framework, A B A B: both see early and late machine load. Alternating every
    # epoch would be worse: each library's idle threads spin for a while and slow the other.
    half = (args.epochs + 1) // 2
    for block in (range(0, half), range(half, args.epochs)):
        for name, runner in runners.items():
            for epoch in block:
                seconds[name].append(runner.epoch(epoch, train, val))
                if not args.quiet:
                    print(f"{name} epoch {epoch + 1}: {seconds[name][-1]:.2f} s")
    np_seconds, t_seconds = seconds["numpy"], seconds["torch"]
    np_acc, t_acc = runners["numpy"].test_acc(test), runners["torch"].test_acc(test)
    import torch

    threads, torch_version = torch.get_num_threads(), torch.__version__
    np_med, t_med = statistics.median(np_seconds), statistics.median(t_seconds)
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch_threads": threads},
        "versions": {"numpy": np.__version__, "torch": torch_version},
        "config": {"sizes": SIZES, "optimizer": "Adam + cosine decay per step", "lr": args.lr, "batch_size": args.batch_size,
                   "epochs": args.epochs, "train_size": len(train[1]), "numpy_threads": args.threads},
        "numpy": {"seconds_per_epoch": np_seconds, "median_s": np_med, "test_acc": np_acc},
        "torch": {"seconds_per_epoch": t_seconds, "median_s": t_med, "test_acc": t_acc},
        "time_ratio_numpy_over_torch": np_med / t_med,
    }
    out = runs.atomic_write_json(runs.root(__file__, "mlp_numpy_vs_torch.json", args.out), result)
    print(f"NumPy  : {np_med:.2f} s/epoch (median of {len(np_seconds)}), test accuracy {np_acc:.4f}")
    print(f"PyTorch: {t_med:.2f} s/epoch (median of {len(t_seconds)}, {threads} threads), test accuracy {t_acc:.4f}")
    print(f"time ratio NumPy / PyTorch = {np_med / t_med:.2f} (goal <= 0.6) -> {out}")
    return result


if __name__ == "__main__":
    cli.run(main)
