"""How far does a linear model get on MNIST? Multinomial logistic (softmax) regression in NumPy.

The baseline every later network is measured against: one weight matrix (784 x 10) and a
bias, trained by mini-batch SGD (cosine-decayed step size) on the softmax cross-entropy. Writes curves, the learned
weight templates (one 28x28 image per digit), a checkpoint and the test accuracy to
section1_mlp/runs/softmax_regression/. With --seeds it repeats per seed and reports
mean ± std with a 95% confidence interval.
"""
from __future__ import annotations

import time

import numpy as np

from shared_utils import cli, data, device, plots, runs, stats
from shared_utils.seed import seed_everything

VAL_SIZE = 5000  # carved from the 60k training images with the run's seed


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient w.r.t. the logits, (N, K) -> (N, K)."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp never overflows
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -log_probs[np.arange(n), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1.0
    return float(loss), grad / n


def evaluate(weights: np.ndarray, bias: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    logits = x @ weights + bias
    loss, _ = softmax_cross_entropy(logits, y)
    return loss, float((logits.argmax(1) == y).mean())


def train_one_seed(args, ds: data.Dataset, seed: int, experiment: str) -> dict:
    rng = seed_everything(seed)
    run = runs.RunDir(__file__, experiment, args, seed=seed)
    # (N, 1, 28, 28) uint8 -> (N, 784) float32, standardised with MNIST's mean and std
    x_train = ds.normalize(ds.train.x).reshape(len(ds.train), -1)
    x_val = ds.normalize(ds.val.x).reshape(len(ds.val), -1)
    x_test = ds.normalize(ds.test.x).reshape(len(ds.test), -1)
    n_features, n_classes = x_train.shape[1], ds.num_classes
    weights = (rng.standard_normal((n_features, n_classes)) * 0.01).astype(np.float32)
    bias = np.zeros(n_classes, dtype=np.float32)
    best_val = -1.0
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    total_steps, step = args.epochs * steps_per_epoch, 0
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(len(x_train))
        losses, correct = [], 0
        for start in cli.progress(range(0, len(order), args.batch_size), quiet=args.quiet,
                                  desc=f"epoch {epoch}/{args.epochs}"):
            # cosine decay per step: big steps early, small ones to settle the noisy SGD iterate
            lr = args.lr * 0.5 * (1 + np.cos(np.pi * step / total_steps))
            step += 1
            idx = order[start:start + args.batch_size]
            xb, yb = x_train[idx], ds.train.y[idx]
            logits = xb @ weights + bias
            loss, grad_logits = softmax_cross_entropy(logits, yb)
            weights -= np.float32(lr) * (xb.T @ grad_logits)
            bias -= np.float32(lr) * grad_logits.sum(0)
            losses.append(loss * len(idx))
            correct += int((logits.argmax(1) == yb).sum())
        val_loss, val_acc = evaluate(weights, bias, x_val, ds.val.y)
        run.log(epoch=epoch, train_loss=sum(losses) / len(order), train_acc=correct / len(order),
                val_loss=val_loss, val_acc=val_acc, lr=lr, seconds=time.perf_counter() - started)
        if val_acc > best_val:
            best_val = val_acc
            run.save_checkpoint({"weights": weights, "bias": bias}, "best.npz")
        if not args.quiet:
            print(f"seed {seed} epoch {epoch}: val_acc {val_acc:.4f} val_loss {val_loss:.4f}")
    best = runs.load_npz(run / "best.npz")
    test_loss, test_acc = evaluate(best["weights"], best["bias"], x_test, ds.test.y)
    plots.learning_curves(run.path, title=f"Softmax regression on MNIST (seed {seed})")
    plots.image_grid(best["weights"].T.reshape(n_classes, 28, 28), run / "weights.png",
                     title="Learned weight templates: one 28x28 image per class",
                     titles=[f"class {c}" for c in ds.classes], ncols=5, cmap="RdBu_r",
                     colorbar_label="weight (red: evidence for the class)", symmetric=True)
    summary = run.summary(test_acc=test_acc, test_loss=test_loss, seed=seed,
                          train_size=len(ds.train), val_size=len(ds.val), test_size=len(ds.test))
    print(f"seed {seed}: test accuracy {test_acc:.4f} ({summary['wall_time_s']:.1f} s) -> {run.path}")
    return {"run": run.path, "test_acc": test_acc, "best_val_acc": best_val}


def main(argv=None):
    p = cli.parser(__doc__, epochs=5, batch_size=128, lr=0.1, seeds=True,
                   quick={"epochs": 1, "limit_train": 6000})
    args = cli.parse(p, argv)
    device.numpy_device(args.device)
    ds = data.mnist(args.data_dir, limit=args.limit_train, val_size=min(VAL_SIZE, (args.limit_train or 60000) // 6),
                    seed=args.seed, quiet=args.quiet)
    results = {}
    for seed in args.seeds:
        experiment = "softmax_regression" if len(args.seeds) == 1 else f"softmax_regression/seed{seed}"
        results[seed] = train_one_seed(args, ds, seed, experiment)
    if len(args.seeds) > 1:
        out = runs.root(__file__, "softmax_regression", args.out)
        header, rows = stats.comparison_rows(
            {"softmax regression": {"test acc (%)": [r["test_acc"] for r in results.values()],
                                    "best val acc (%)": [r["best_val_acc"] for r in results.values()]}},
            scale=100.0)
        stats.write_table(header, rows, out / "seeds_table",
                          caption=f"Softmax regression on MNIST, seeds {args.seeds}: mean ± std [95% CI]")
        plots.compare_curves({"softmax regression": [r["run"] for r in results.values()]},
                             out / "seeds_curves.png", title="Softmax regression on MNIST across seeds")
        print(" | ".join(rows[0]))
    return results


if __name__ == "__main__":
    cli.run(main)
