"""How far does a linear model get on MNIST? Multinomial logistic (softmax) regression in NumPy.

The baseline every later network is measured against: one weight matrix (784 x 10) and a
bias, i.e. section 1's MLP with no hidden layer, trained by mini-batch SGD with a cosine-
decayed step size on the softmax cross-entropy. Writes curves, the learned weight templates
(one 28x28 image per digit), a checkpoint and the test accuracy to
section1_mlp/runs/softmax_regression/softmax_regression/seed_<n>/. With --seeds it repeats per seed
and reports mean ± std with a 95% confidence interval (table.md beside the seed folders).
"""
from __future__ import annotations

from section1_mlp.mlp import MLP, PlainSGD
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.optim import CosineAnnealingLR
from section2_optimization.trainer import evaluate, fit
from shared_utils import cli, data, plots, runs
from shared_utils.study import Study, start

# ---- hyper-parameters; --epochs, --batch-size and --lr override them
HP = {"epochs": 5, "batch_size": 128, "lr": 0.1}


def load(config: dict) -> data.Dataset:
    return data.mnist_from_settings(config)      # the project's one split: a sixth, at most 5,000, for validation


def trial(config: dict) -> dict:
    seed = config["seed"]
    run = start(config).run
    ds = load(config)
    train, val, test = (ds.arrays(s, flatten=True) for s in ("train", "val", "test"))
    model = MLP([train[0].shape[1], ds.num_classes], seed=seed)  # no hidden layer: linear
    optimizer = PlainSGD(model, config["lr"])
    steps = config["epochs"] * -(-len(train[1]) // config["batch_size"])
    # big steps early, small ones to settle the noisy SGD iterate
    schedule = CosineAnnealingLR(optimizer, T_max=steps)
    history = fit(model, softmax_cross_entropy, optimizer, train, val, epochs=config["epochs"],
                  batch_size=config["batch_size"], seed=seed, run=run, scheduler=schedule,
                  schedule_per="batch", quiet=config["quiet"])
    best = MLP.from_state_dict(runs.load_npz(run / "best.npz"))
    test_loss, test_acc = evaluate(best, softmax_cross_entropy, *test)
    plots.learning_curves(run.path, title=f"Softmax regression on MNIST (seed {seed})")
    plots.image_grid(best.weights[0].T.reshape(-1, 28, 28), run / "weights.png",
                     title="Learned weight templates: one 28x28 image per class",
                     titles=[f"class {c}" for c in ds.classes], ncols=5, cmap="RdBu_r",
                     colorbar_label="weight (red: evidence for the class)", symmetric=True)
    return run.summary(test_acc=test_acc, test_loss=test_loss, seed=seed, best_epoch=history.best_epoch,
                       train_size=len(ds.train), val_size=len(ds.val), test_size=len(ds.test))


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 1, "limit_train": 6000})
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    study = Study("softmax_regression", trial, {"softmax regression": {}}, args.seeds,
                  runs.root(__file__, out=args.out), base={**cli.hyperparameters(HP, args), **cli.data_settings(args)},
                  resume=args.resume)
    load(study.base)      # no data and no network: stop here, before any trial
    result = study.run_or_load(args)
    table = result.report({"test_acc": "test acc (%)", "best_val_acc": "best val acc (%)"}, scale=100,
                          caption=f"Softmax regression on MNIST, seeds {args.seeds}: mean ± std [95% CI]",
                          bar_ylabel="test accuracy (%)", bar_xlabel="model",
                          curve_title="Softmax regression on MNIST across seeds")
    for outcome in result.outcomes:
        if outcome.status != "failed":
            print(f"seed {outcome.trial.seed}: test accuracy {outcome.summary['test_acc']:.4f} -> {outcome.trial.path}")
    result.finish(table if len(args.seeds) > 1 else "")
    return [o.summary for o in result.outcomes]


if __name__ == "__main__":
    cli.run(main)
