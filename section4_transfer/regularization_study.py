"""Which regulariser closes the train/validation gap of a small CNN on CIFAR-10?

Baseline (no regularisation) against data augmentation (crop + flip), dropout (0.3), weight
decay (5e-4), batch normalisation, and all of them combined: the same small CNN, data, epochs
and optimizer (SGD with Nesterov momentum, lr 0.05, cosine decay). The headline figure is the
gap between training and validation accuracy at the end, next to test accuracy.
Outputs in section4_transfer/runs/regularization/.
"""
from __future__ import annotations

from section4_transfer.common import add_cifar_flags, load_cifar, make_loaders, train_and_test
from section4_transfer.models import SmallCNN
from shared_utils import cli, device as devices, plots, runs, stats
from shared_utils.seed import seed_everything
from shared_utils.training import TrainConfig

# name -> (augmentations, dropout, weight decay, batch norm)
CONDITIONS = {
    "baseline": ((), 0.0, 0.0, False),
    "augmentation": (("crop", "flip"), 0.0, 0.0, False),
    "dropout": ((), 0.3, 0.0, False),
    "weight decay": ((), 0.0, 5e-4, False),
    "batch norm": ((), 0.0, 0.0, True),
    "all combined": (("crop", "flip"), 0.3, 5e-4, True),
}


def main(argv=None):
    p = cli.parser(__doc__, epochs=10, batch_size=64, lr=0.05, seeds=True,
                   quick={"epochs": 1, "train_subset": 256, "test_subset": 256, "val_size": 128})
    p.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    add_cifar_flags(p)
    args = cli.parse(p, argv)
    device = devices.resolve(args.device)
    ds = load_cifar(args)
    out = runs.root(__file__, "regularization", args.out)
    results, paths = {}, {}
    for name in args.conditions:
        augment, dropout, weight_decay, batchnorm = CONDITIONS[name]
        for seed in args.seeds:
            seed_everything(seed)
            slug = name.replace(" ", "_")
            run = runs.RunDir(__file__, f"regularization/{slug}/seed{seed}", args, resume=args.resume, condition=name)
            cfg = TrainConfig(epochs=args.epochs, lr=args.lr, optimizer="sgd", weight_decay=weight_decay,
                              schedule="cosine")
            s = train_and_test(SmallCNN(batchnorm=batchnorm, dropout=dropout),
                               make_loaders(ds, args, device, augment, seed=seed), cfg, run, device, args=args,
                               title=f"Small CNN, {name} (seed {seed})")
            gap = 100 * (s["final_train_acc"] - s["final_val_acc"])
            results.setdefault(name, {}).setdefault("train - val acc (points)", []).append(gap)
            results[name].setdefault("test acc (%)", []).append(100 * s["test_acc"])
            paths.setdefault(name, []).append(run.path)
            print(f"{name:14s} seed {seed}: train-val gap {gap:.1f} points, test accuracy {s['test_acc']:.4f}")
    table = stats.write_comparison(results, out / "table", caption=f"Regularisation study: small CNN, {args.epochs} "
                                   f"epochs, {len(ds.train)} training images, seeds {args.seeds}; mean ± std [95% CI]")
    values, errors = stats.bar_values(results, {"train - val acc (points)": "train - val gap (points)",
                                                "test acc (%)": "test accuracy (%)"})
    plots.grouped_bars(values, out / "gap_and_accuracy.png", errors=errors,
                       title="Regularisers head to head: the train/validation gap and test accuracy",
                       xlabel="regulariser", ylabel="percentage points / percent")
    plots.compare_curves(paths, out / "curves.png", metrics=("train_acc", "val_acc"),
                         title="Training vs validation accuracy under each regulariser")
    print(table)
    return results


if __name__ == "__main__":
    cli.run(main)
