"""Does ImageNet pretraining help on CIFAR-10, and should the backbone be fine-tuned or frozen?

ResNet-18 at ImageNet resolution (--resize, default 224) in three conditions with the same
data, epochs and optimizer (SGD, Nesterov momentum, cosine decay): from scratch; pretrained
and fine-tuned end to end; pretrained with the backbone frozen and only a new 10-class head
trained. --weights imagenet uses torchvision's ImageNet weights (torch hub cache, else
download); --weights PATH any compatible state dict (for instance one pretrained here by
self-supervision); --weights none runs the scratch condition only. --train-subset and --resize
keep it practical on a CPU. Outputs in section4_transfer/runs/transfer_learning/.
"""
from __future__ import annotations

from section4_transfer.common import add_cifar_flags, load_cifar, make_loaders, train_and_test
from section4_transfer.models import count_parameters, freeze_backbone, load_pretrained, resnet18
from shared_utils import cli, device as devices, plots, runs, stats
from shared_utils.seed import seed_everything
from shared_utils.training import TrainConfig


def main(argv=None):
    p = cli.parser(__doc__, epochs=5, batch_size=64, lr=0.01,
                   quick={"epochs": 1, "train_subset": 64, "test_subset": 64, "val_size": 32, "resize": 32})
    p.add_argument("--resize", type=cli.positive_int, default=224, help="input side fed to the network")
    p.add_argument("--weights", default="imagenet", help="imagenet, a path to a state dict, or none")
    add_cifar_flags(p, val_size=1000)
    args = cli.parse(p, argv)
    device = devices.resolve(args.device)
    conditions = [("scratch", False, False)]
    if args.weights != "none":
        conditions += [("pretrained, fine-tune all", True, False), ("pretrained, frozen backbone", True, True)]
        load_pretrained(resnet18(cifar_stem=False), args.weights)   # fail fast, before any training
    ds = load_cifar(args)
    loaders = make_loaders(ds, args, device, augment_names=("crop", "flip"), resize=args.resize)
    results, paths = {}, {}
    for label, pretrained, frozen in conditions:
        seed_everything(args.seed)
        model = resnet18(classes=10, cifar_stem=False)
        loaded = load_pretrained(model, args.weights) if pretrained else None
        if frozen:
            freeze_backbone(model)
        slug = label.replace(", ", "_").replace(" ", "_")
        run = runs.RunDir(__file__, f"transfer_learning/{slug}", args, resume=args.resume, condition=label)
        cfg = TrainConfig(epochs=args.epochs, lr=args.lr, optimizer="sgd", weight_decay=5e-4, schedule="cosine")
        s = train_and_test(model, loaders, cfg, run, device, args=args, title=f"ResNet-18, {label}",
                           trainable_parameters=count_parameters(model, trainable_only=True), loaded=loaded,
                           resize=args.resize)
        results[label] = {"test acc (%)": [100 * s["test_acc"]], "trainable parameters": [s["trainable_parameters"]],
                          "seconds per epoch": [float(runs.read_metrics(run.path)["seconds"].mean())]}
        paths[label] = run.path
        print(f"{label:28s} test accuracy {s['test_acc']:.4f} ({s['trainable_parameters']:,} trainable)")
    out = runs.root(__file__, "transfer_learning", args.out)
    print(stats.write_comparison(results, out / "table", caption=f"Transfer to CIFAR-10 at {args.resize}px, "
                                 f"{len(ds.train)} training images, {args.epochs} epochs, weights: {args.weights}"))
    plots.compare_curves(paths, out / "curves.png", metrics=("train_loss", "val_acc"),
                         title="ResNet-18 on CIFAR-10: scratch vs pretrained, fine-tuned vs frozen")
    return results


if __name__ == "__main__":
    cli.run(main)
