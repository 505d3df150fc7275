"""Max or average pooling? The same NumPy CNN, seeds and batches; only the pooling differs.

Each pooling is trained for --epochs on MNIST for every seed in --seeds; curves are overlaid
(mean ± std across seeds) and the final table gives test accuracy as mean ± std with a 95%
confidence interval, in section3_cnn/runs/pooling_compare/. Trials run through the study runner:
--workers 2 trains two of them at once.
"""
from __future__ import annotations

import argparse

from section3_cnn.experiment import POOLING_HP as HP
from section3_cnn.experiment import load_mnist
from section3_cnn.experiment import pooling_trial as trial
from section3_cnn.model import POOLS
from shared_utils import cli, runs
from shared_utils.study import Study

def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 1, "limit_train": 2000, "test_subset": 2000})
    cli.add_test_subset(p)
    p.add_argument("--pools", nargs="+", choices=sorted(POOLS), default=["max", "avg"])
    p.add_argument("--shift", type=int, choices=range(0, 5), default=HP["shift"], metavar="{0..4}",
                   help="augment: shift each training image by up to this many pixels (as the main job)")
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    base = {**cli.hyperparameters(HP, args), **cli.data_settings(args)}
    study = Study("pooling_compare", trial, Study.grid(pool=args.pools), args.seeds,
                  runs.root(__file__, out=args.out), base=base, resume=args.resume)
    load_mnist(argparse.Namespace(**{**study.base, "seed": args.seed}))   # no data: stop before any trial
    result = study.run_or_load(args)
    table = result.report({"test_acc": "test acc (%)", "best_val_acc": "best val acc (%)",
                           "final_train_loss": "final train loss"}, scale={"test_acc": 100, "best_val_acc": 100},
                          digits=3, caption=f"Max vs average pooling, NumPy CNN, {args.epochs} epochs, "
                                            f"seeds {args.seeds}: mean ± std [95% CI]",
                          bar_ylabel="test accuracy (%)", bar_xlabel="pooling", logy=("train_loss",),
                          curve_title="Max vs average pooling: same network, seeds and batches")
    result.finish(table)
    return result.values("test_acc", 100)


if __name__ == "__main__":
    cli.run(main)
