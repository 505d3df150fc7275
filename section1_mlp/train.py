"""Does the hidden activation matter? ReLU vs sigmoid vs tanh in the hand-written MLP on MNIST.

Same architecture (784-256-128-10), same mini-batches in the same order, plain SGD with
the same learning rate; only the activation (and its matching initialisation: He for ReLU,
Xavier for sigmoid/tanh) changes. Curves are overlaid; each activation keeps its best
checkpoint (runs/activation_compare/<activation>/best.npz, read by evaluate.py).
"""
from __future__ import annotations

from section1_mlp.mlp import ACTIVATIONS, MLP, PlainSGD
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.trainer import evaluate, fit
from shared_utils import cli, data, device, plots, runs, stats
from shared_utils.seed import seed_everything

EXPERIMENT = "activation_compare"


def main(argv=None):
    p = cli.parser(__doc__, epochs=5, batch_size=64, lr=0.1, seeds=True,
                   quick={"epochs": 1, "limit_train": 3000})
    p.add_argument("--activations", nargs="+", choices=sorted(ACTIVATIONS), default=["relu", "sigmoid", "tanh"])
    p.add_argument("--hidden", type=cli.positive_int, nargs="+", default=[256, 128], help="hidden widths")
    args = cli.parse(p, argv)
    device.numpy_device(args.device)
    ds = data.mnist(args.data_dir, limit=args.limit_train, val_size=min(5000, (args.limit_train or 60000) // 6),
                    seed=args.seed, quiet=args.quiet)
    train, val, test = (ds.arrays(s, flatten=True) for s in ("train", "val", "test"))
    sizes = [train[0].shape[1], *args.hidden, ds.num_classes]
    results: dict[str, dict[str, list[float]]] = {}
    run_paths: dict[str, list] = {}
    for activation in args.activations:
        for seed in args.seeds:
            seed_everything(seed)
            name = activation if len(args.seeds) == 1 else f"{activation}/seed{seed}"
            run = runs.RunDir(__file__, f"{EXPERIMENT}/{name}", args, activation=activation, seed=seed)
            model = MLP(sizes, activation=activation, seed=seed)
            # the shuffling seed is the run seed, so every activation sees identical batches
            fit(model, softmax_cross_entropy, PlainSGD(model, args.lr), train, val, epochs=args.epochs,
                batch_size=args.batch_size, seed=seed, run=run, quiet=args.quiet, desc=f"{activation} s{seed}")
            best = MLP.from_state_dict(runs.load_npz(run / "best.npz"))
            test_loss, test_acc = evaluate(best, softmax_cross_entropy, *test)
            plots.learning_curves(run.path, title=f"MLP {'-'.join(map(str, sizes))}, {activation} (seed {seed})")
            summary = run.summary(test_acc=test_acc, test_loss=test_loss, parameters=model.num_parameters())
            results.setdefault(activation, {}).setdefault("test acc (%)", []).append(test_acc)
            results[activation].setdefault("best val acc (%)", []).append(summary["best_val_acc"])
            results[activation].setdefault("final train loss", []).append(summary["final_train_loss"])
            run_paths.setdefault(activation, []).append(run.path)
            print(f"{activation:8s} seed {seed}: test accuracy {test_acc:.4f} ({summary['wall_time_s']:.1f} s)")
    out = runs.root(__file__, EXPERIMENT, args.out)
    header, rows = stats.comparison_rows({a: {k: [v * (100 if "%" in k else 1) for v in vals]
                                              for k, vals in r.items()} for a, r in results.items()}, digits=3)
    stats.write_table(header, rows, out / "table",
                      caption=f"Activation comparison, MLP {sizes}, SGD lr {args.lr}, {args.epochs} epochs")
    plots.compare_curves(run_paths, out / "curves.png", metrics=("train_loss", "val_acc"), logy=("train_loss",),
                         title=f"Hidden activation, same net and batches: MLP {'-'.join(map(str, sizes))} on MNIST")
    print("\n".join(" | ".join(r) for r in [header] + rows))
    return results


if __name__ == "__main__":
    cli.run(main)
