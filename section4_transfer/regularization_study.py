"""Which regulariser closes the train/validation gap of a small CNN on CIFAR-10?

Baseline (no regularisation) against data augmentation (crop + flip), dropout (0.3), weight
decay (5e-4), batch normalisation, and all of them combined: the same small CNN, data, epochs
and optimizer (SGD with Nesterov momentum, lr 0.05, cosine decay). The headline figure is the
gap between training and validation accuracy at the end, next to test accuracy.
Outputs in section4_transfer/runs/regularization/.
"""
from __future__ import annotations

from section4_transfer.experiment import (cifar_study, gap_points, load_cifar, make_loaders, study_parser,
                                         train_and_test)
from shared_utils import cli
from shared_utils.study import start
from shared_utils.pytorch.engine import TrainConfig
from shared_utils.pytorch.models import SmallCNN

# ---- hyper-parameters of the baseline (no regularisation); --epochs, --batch-size and --lr override them
HP = {"epochs": 10, "batch_size": 64, "lr": 0.05, "optimizer": "sgd", "schedule": "cosine",
      "augment": [], "dropout": 0.0, "weight_decay": 0.0, "batchnorm": False}
CONDITIONS = {
    "baseline": {},
    "augmentation": {"augment": ["crop", "flip"]},
    "dropout": {"dropout": 0.3},
    "weight decay": {"weight_decay": 5e-4},
    "batch norm": {"batchnorm": True},
    "all combined": {"augment": ["crop", "flip"], "dropout": 0.3, "weight_decay": 5e-4, "batchnorm": True},
}


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = load_cifar(config)
    model = SmallCNN(batchnorm=config["batchnorm"], dropout=config["dropout"])
    return train_and_test(model, make_loaders(ds, config, device, config["augment"], seed=config["seed"]),
                       TrainConfig.from_config(config), run, device, config=config,
                       title=f"Small CNN, {config['condition']} (seed {config['seed']})")


def main(argv=None):
    p = study_parser(__doc__, HP)
    p.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    args = cli.parse(p, argv)
    study = cifar_study(__file__, "regularization", trial, {c: CONDITIONS[c] for c in args.conditions}, args, HP)
    result = study.run_or_load(args)
    test_acc = result.values("test_acc", 100)
    table = result.report({}, extra={c: {"train - val gap (points)": v, "test accuracy (%)": test_acc[c]}
                                     for c, v in gap_points(result).items()},
                          bars=["train - val gap (points)", "test accuracy (%)"],
                          caption=f"Regularisation study: small CNN, {args.epochs} epochs, seeds {args.seeds}; "
                                  "mean ± std [95% CI]",
                          bar_title="Regularisers head to head: the train/validation gap and test accuracy",
                          bar_xlabel="regulariser", bar_ylabel="percentage points / percent",
                          curves=("train_acc", "val_acc"),
                          curve_title="Training vs validation accuracy under each regulariser")
    result.finish(table)
    return result.values("test_acc", 100)


if __name__ == "__main__":
    cli.run(main)
