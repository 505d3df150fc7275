"""How far does a linear model get on MNIST? Multinomial logistic (softmax) regression in NumPy.

The baseline every later network is measured against: one weight matrix (784 x 10) and a
bias, i.e. section 1's MLP with no hidden layer, trained by mini-batch SGD with a cosine-
decayed step size on the softmax cross-entropy. Writes curves, the learned weight templates
(one 28x28 image per digit), a checkpoint and the test accuracy to
section1_mlp/runs/softmax_regression/. With --seeds it repeats per seed and reports
mean ± std with a 95% confidence interval.
"""
from __future__ import annotations

from section1_mlp.mlp import MLP, PlainSGD
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.optim import CosineAnnealingLR
from section2_optimization.trainer import evaluate, fit
from shared_utils import cli, data, device, plots, runs, stats
from shared_utils.seed import seed_everything

VAL_SIZE = 5000  # carved from the 60k training images with the run's seed


def train_one_seed(args, ds: data.Dataset, seed: int, experiment: str) -> dict:
    seed_everything(seed)
    run = runs.RunDir(__file__, experiment, args, seed=seed)
    train, val, test = (ds.arrays(s, flatten=True) for s in ("train", "val", "test"))
    model = MLP([train[0].shape[1], ds.num_classes], seed=seed)  # no hidden layer: linear
    optimizer = PlainSGD(model, args.lr)
    steps = args.epochs * -(-len(train[1]) // args.batch_size)
    # big steps early, small ones to settle the noisy SGD iterate
    schedule = CosineAnnealingLR(optimizer, T_max=steps)
    history = fit(model, softmax_cross_entropy, optimizer, train, val, epochs=args.epochs,
                  batch_size=args.batch_size, seed=seed, run=run, scheduler=schedule,
                  schedule_per="batch", quiet=args.quiet)
    best = MLP.from_state_dict(runs.load_npz(run / "best.npz"))
    test_loss, test_acc = evaluate(best, softmax_cross_entropy, *test)
    plots.learning_curves(run.path, title=f"Softmax regression on MNIST (seed {seed})")
    plots.image_grid(best.weights[0].T.reshape(-1, 28, 28), run / "weights.png",
                     title="Learned weight templates: one 28x28 image per class",
                     titles=[f"class {c}" for c in ds.classes], ncols=5, cmap="RdBu_r",
                     colorbar_label="weight (red: evidence for the class)", symmetric=True)
    summary = run.summary(test_acc=test_acc, test_loss=test_loss, seed=seed, best_epoch=history.best_epoch,
                          train_size=len(ds.train), val_size=len(ds.val), test_size=len(ds.test))
    print(f"seed {seed}: test accuracy {test_acc:.4f} ({summary['wall_time_s']:.1f} s) -> {run.path}")
    return {"run": run.path, "test_acc": test_acc, "best_val_acc": summary["best_val_acc"]}


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
