"""How much does convolution buy on CIFAR-10? An MLP and a small CNN with the same budget.

Both see the same images in the same order for the same number of epochs (Adam, lr 1e-3,
batch 64, no augmentation, as in the source notebook). Reports parameters, test accuracy and
overlaid curves in section4_transfer/runs/mlp_vs_cnn/. The source reports about 49% (MLP)
and 70% (CNN) after 5 epochs.
"""
from __future__ import annotations

from section4_transfer.common import add_cifar_flags, load_cifar, make_loaders, train_and_test
from section4_transfer.models import build_model, count_parameters
from shared_utils import cli, device as devices, plots, runs, stats
from shared_utils.seed import seed_everything
from shared_utils.training import TrainConfig


def main(argv=None):
    p = cli.parser(__doc__, epochs=5, batch_size=64, lr=1e-3, seeds=True,
                   quick={"epochs": 1, "train_subset": 512, "test_subset": 512, "val_size": 256})
    add_cifar_flags(p)
    args = cli.parse(p, argv)
    device = devices.resolve(args.device)
    ds = load_cifar(args)
    results, paths = {}, {}
    for name in ("mlp", "cnn"):
        for seed in args.seeds:
            seed_everything(seed)
            model = build_model(name)
            run = runs.RunDir(__file__, f"mlp_vs_cnn/{name}/seed{seed}", args, resume=args.resume, model=name)
            cfg = TrainConfig(epochs=args.epochs, lr=args.lr, optimizer="adam", weight_decay=0.0, schedule="none")
            s = train_and_test(model, make_loaders(ds, args, device, seed=seed), cfg, run, device, args=args,
                               title=f"{name.upper()} on CIFAR-10 (seed {seed})", parameters=count_parameters(model))
            results.setdefault(name.upper(), {}).setdefault("test acc (%)", []).append(100 * s["test_acc"])
            results[name.upper()].setdefault("parameters", []).append(s["parameters"])
            results[name.upper()].setdefault("seconds per epoch", []).append(
                float(sum(runs.read_metrics(run.path)["seconds"]) / args.epochs))
            paths.setdefault(name.upper(), []).append(run.path)
            print(f"{name.upper()} seed {seed}: test accuracy {s['test_acc']:.4f}, {s['parameters']:,} parameters")
    out = runs.root(__file__, "mlp_vs_cnn", args.out)
    table = stats.write_comparison(results, out / "table", caption=f"MLP vs CNN, {args.epochs} epochs, "
                                   f"{len(ds.train)} training images, seeds {args.seeds}")
    plots.compare_curves(paths, out / "curves.png", metrics=("train_loss", "val_acc"),
                         title="MLP vs CNN on CIFAR-10: same data, epochs and optimizer")
    print(table)
    return results


if __name__ == "__main__":
    cli.run(main)
