"""Max or average pooling? The same NumPy CNN, seeds and batches; only the pooling differs.

Each pooling is trained for --epochs on MNIST for every seed in --seeds; curves are overlaid
(mean ± std across seeds) and the final table gives test accuracy as mean ± std with a 95%
confidence interval, in section3_cnn/runs/pooling_compare/.
"""
from __future__ import annotations

from section3_cnn.experiment import load_mnist, train_cnn
from section3_cnn.model import POOLS
from shared_utils import cli, device, plots, runs, stats
from shared_utils.seed import seed_everything


def main(argv=None):
    p = cli.parser(__doc__, epochs=3, batch_size=64, lr=0.003, seeds=True, quick={"epochs": 1, "limit_train": 2000})
    p.add_argument("--pools", nargs="+", choices=sorted(POOLS), default=["max", "avg"])
    p.add_argument("--shift", type=int, choices=range(0, 5), default=1, metavar="{0..4}",
                   help="augment: shift each training image by up to this many pixels (as the main job)")
    args = cli.parse(p, argv)
    device.numpy_device(args.device)
    ds = load_mnist(args)
    results: dict[str, dict[str, list[float]]] = {}
    paths: dict[str, list] = {}
    for pool in args.pools:
        for seed in args.seeds:
            seed_everything(seed)
            run = runs.RunDir(__file__, f"pooling_compare/{pool}/seed{seed}", args, pool=pool, seed=seed)
            s = train_cnn(args, ds, run, seed=seed, pool=pool, shift=args.shift)
            results.setdefault(pool, {}).setdefault("test acc (%)", []).append(100 * s["test_acc"])
            results[pool].setdefault("best val acc (%)", []).append(100 * s["best_val_acc"])
            results[pool].setdefault("final train loss", []).append(s["final_train_loss"])
            paths.setdefault(f"{pool} pooling", []).append(run.path)
            print(f"{pool} pooling, seed {seed}: test accuracy {s['test_acc']:.4f}")
    out = runs.root(__file__, "pooling_compare", args.out)
    table = stats.write_comparison(results, out / "table", digits=3,
                                   caption=f"Max vs average pooling, NumPy CNN, {args.epochs} epochs, "
                                           f"seeds {args.seeds}: mean ± std [95% CI]")
    plots.compare_curves(paths, out / "curves.png", metrics=("train_loss", "val_acc"), logy=("train_loss",),
                         title="Max vs average pooling: same network, seeds and batches")
    print(table)
    return results


if __name__ == "__main__":
    cli.run(main)
