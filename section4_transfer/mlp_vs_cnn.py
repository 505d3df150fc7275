"""How much does convolution buy on CIFAR-10? An MLP and a small CNN with the same budget.

Both see the same images in the same order for the same number of epochs (Adam, lr 1e-3,
batch 64, no augmentation, as in the source notebook). Reports parameters, test accuracy and
overlaid curves in section4_transfer/runs/mlp_vs_cnn/. The source reports about 49% (MLP)
and 70% (CNN) after 5 epochs.
"""
from __future__ import annotations

from section4_transfer.experiment import cifar_study, load_cifar, make_loaders, study_parser, train_and_test
from shared_utils import cli
from shared_utils.pytorch.engine import TrainConfig
from shared_utils.pytorch.models import build_model, count_parameters
from shared_utils.study import start

# ---- hyper-parameters (the source notebook's); --epochs, --batch-size and --lr override them
HP = {"epochs": 5, "batch_size": 64, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "schedule": "none",
      "model": "cnn"}
CONDITIONS = {"MLP": {"model": "mlp"}, "CNN": {"model": "cnn"}}


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = load_cifar(config)
    model = build_model(config["model"])
    loaders = make_loaders(ds, config, device, seed=config["seed"])
    return train_and_test(model, loaders, TrainConfig.from_config(config), run, device, config=config,
                          title=f"{config['condition']} on CIFAR-10 (seed {config['seed']})",
                          parameters=count_parameters(model), train_images=len(ds.train))


def main(argv=None):
    p = study_parser(__doc__, HP, quick={"epochs": 1, "limit_train": 768, "test_subset": 512, "val_size": 256})
    args = cli.parse(p, argv)
    study = cifar_study(__file__, "mlp_vs_cnn", trial, CONDITIONS, args, HP)
    result = study.run_or_load(args)
    table = result.report({"test_acc": "test acc (%)", "parameters": "parameters",
                           "seconds_per_epoch": "seconds per epoch"}, scale={"test_acc": 100},
                          caption=f"MLP vs CNN, {args.epochs} epochs, seeds {args.seeds}; mean ± std [95% CI]",
                          bar_ylabel="test accuracy (%)", bar_xlabel="model",
                          curve_title="MLP vs CNN on CIFAR-10: same data, epochs and optimizer")
    result.finish(table)
    return result.values("test_acc")


if __name__ == "__main__":
    cli.run(main)
