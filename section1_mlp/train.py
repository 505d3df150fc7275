"""Does the hidden activation matter? ReLU vs sigmoid vs tanh in the hand-written MLP on MNIST.

Same architecture (784-256-128-10), same mini-batches in the same order, plain SGD with
the same learning rate; only the activation (and its matching initialisation: He for ReLU,
Xavier for sigmoid/tanh) changes. Curves are overlaid; each activation keeps its best
checkpoint (runs/activation_compare/<activation>/seed_<n>/best.npz, read by evaluate.py).
Trials run through the study runner: --workers 2 trains two at once.
"""
from __future__ import annotations

from section1_mlp.mlp import ACTIVATIONS, MLP, PlainSGD
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.trainer import evaluate, fit
from shared_utils import cli, data, plots, runs
from shared_utils.study import Study, start

EXPERIMENT = "activation_compare"
# ---- hyper-parameters; --epochs, --batch-size, --lr and --hidden override them
HP = {"epochs": 5, "batch_size": 64, "lr": 0.1, "hidden": [256, 128], "activation": "relu"}


def load(config: dict) -> data.Dataset:
    return data.mnist_from_settings(config)      # the project's one split: a sixth, at most 5,000, for validation


def trial(config: dict) -> dict:
    seed = config["seed"]
    run = start(config).run
    ds = load(config)
    train, val, test = (ds.arrays(s, flatten=True) for s in ("train", "val", "test"))
    sizes = [train[0].shape[1], *config["hidden"], ds.num_classes]
    activation = config["activation"]
    model = MLP(sizes, activation=activation, seed=seed)
    # the shuffling seed is the run seed, so every activation sees identical batches
    fit(model, softmax_cross_entropy, PlainSGD(model, config["lr"]), train, val, epochs=config["epochs"],
        batch_size=config["batch_size"], seed=seed, run=run, quiet=config["quiet"], desc=f"{activation} s{seed}")
    best = MLP.from_state_dict(runs.load_npz(run / "best.npz"))
    test_loss, test_acc = evaluate(best, softmax_cross_entropy, *test)
    plots.learning_curves(run.path, title=f"MLP {'-'.join(map(str, sizes))}, {activation} (seed {seed})")
    return run.summary(test_acc=test_acc, test_loss=test_loss, parameters=model.num_parameters())


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 1, "limit_train": 3000})
    p.add_argument("--activations", nargs="+", choices=sorted(ACTIVATIONS), default=["relu", "sigmoid", "tanh"])
    p.add_argument("--hidden", type=cli.width, nargs="+", default=HP["hidden"], help="hidden widths")
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    base = {**cli.hyperparameters(HP, args), **cli.data_settings(args)}
    study = Study(EXPERIMENT, trial, {a: {"activation": a} for a in args.activations}, args.seeds,
                  runs.root(__file__, out=args.out), base=base, resume=args.resume)
    load(study.base)      # no data and no network: stop here, before any trial
    result = study.run_or_load(args)
    sizes = "-".join(map(str, [784, *args.hidden, 10]))
    table = result.report({"test_acc": "test acc (%)", "best_val_acc": "best val acc (%)",
                           "final_train_loss": "final train loss"}, scale={"test_acc": 100, "best_val_acc": 100},
                          digits=3, caption=f"Activation comparison, MLP {sizes}, SGD lr {args.lr}, {args.epochs} epochs",
                          bar_ylabel="test accuracy (%)", bar_xlabel="hidden activation", logy=("train_loss",),
                          curve_title=f"Hidden activation, same net and batches: MLP {sizes} on MNIST")
    result.finish(table)
    return result.values("test_acc")


if __name__ == "__main__":
    cli.run(main)
