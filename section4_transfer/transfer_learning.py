"""Does ImageNet pretraining help on CIFAR-10, and should the backbone be fine-tuned or frozen?

ResNet-18 at ImageNet resolution (--resize, default 224) in three conditions with the same
data, epochs and optimizer (SGD, Nesterov momentum, cosine decay): from scratch; pretrained
and fine-tuned end to end; pretrained with the backbone frozen and only a new 10-class head
trained. --weights imagenet uses torchvision's ImageNet weights (torch hub cache, else
download); --weights PATH any compatible state dict (for instance one pretrained here by
self-supervision); --weights none runs the scratch condition only. --limit-train and --resize
keep it practical on a CPU. Outputs in section4_transfer/runs/transfer_learning/.
"""
from __future__ import annotations

from section4_transfer.experiment import cifar_study, load_cifar, make_loaders, study_parser, train_and_test
from shared_utils import cli
from shared_utils.pytorch.engine import TrainConfig
from shared_utils.pytorch.models import count_parameters, freeze_backbone, load_pretrained, resnet18
from shared_utils.study import start

# ---- hyper-parameters; --epochs, --batch-size, --lr, --resize and --weights override them
HP = {"epochs": 5, "batch_size": 64, "lr": 0.01, "optimizer": "sgd", "weight_decay": 5e-4, "schedule": "cosine",
      "resize": 224, "weights": "imagenet", "pretrained": False, "frozen": False}
CONDITIONS = {
    "scratch": {},
    "pretrained, fine-tune all": {"pretrained": True},
    "pretrained, frozen backbone": {"pretrained": True, "frozen": True},
}


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = load_cifar(config)
    model = resnet18(classes=10, cifar_stem=False)
    loaded = load_pretrained(model, config["weights"]) if config["pretrained"] else None
    if config["frozen"]:
        freeze_backbone(model)
    # loaders per condition: every condition draws its shuffles and augmentations from its own seed
    loaders = make_loaders(ds, config, device, ("crop", "flip"), seed=config["seed"], resize=config["resize"])
    return train_and_test(model, loaders, TrainConfig.from_config(config), run, device, config=config,
                          title=f"ResNet-18, {config['condition']}",
                          trainable_parameters=count_parameters(model, trainable_only=True), loaded=loaded,
                          resize=config["resize"])


def main(argv=None):
    p = study_parser(__doc__, HP, quick={"epochs": 1, "limit_train": 96, "test_subset": 64, "val_size": 32,
                                         "resize": 32}, val_size=1000)
    p.add_argument("--resize", type=cli.bounded_int(32, 1024, " pixels"), default=HP["resize"],
                   help="input side fed to the network")
    p.add_argument("--weights", default=HP["weights"], help="imagenet, a path to a state dict, or none")
    args = cli.parse(p, argv)
    conditions = dict(CONDITIONS) if args.weights != "none" else {"scratch": CONDITIONS["scratch"]}
    if args.weights != "none" and not args.report_only:
        load_pretrained(resnet18(cifar_stem=False), args.weights)   # fail fast, before any training
    study = cifar_study(__file__, "transfer_learning", trial, conditions, args, HP, weights=str(args.weights))
    result = study.run_or_load(args)
    table = result.report({"test_acc": "test acc (%)", "trainable_parameters": "trainable parameters",
                           "seconds_per_epoch": "seconds per epoch"}, scale={"test_acc": 100},
                          caption=f"Transfer to CIFAR-10 at {args.resize}px, {args.epochs} epochs, weights: "
                                  f"{args.weights}, seeds {args.seeds}",
                          bar_ylabel="test accuracy (%)", bar_xlabel="condition",
                          curve_title="ResNet-18 on CIFAR-10: scratch vs pretrained, fine-tuned vs frozen")
    result.finish(table)
    return result.values("test_acc", 100)


if __name__ == "__main__":
    cli.run(main)
