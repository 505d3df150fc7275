"""Which data augmentations help a small CNN on CIFAR-10, alone and together?

Seven conditions plus a baseline, same model (the small CNN), data, epochs and optimizer, only
the training-time augmentation differs: none, horizontal flip, random crop (4-pixel padding),
colour jitter, rotation (±15°), cutout (8x8) and RandAugment (torchvision's policy), then
flip + crop + colour + rotation + cutout combined. Augmentations run on whole batches of
tensors (shared_utils.tensor_pipeline). Reports test accuracy mean ± 95% CI over --seeds (bar
chart), curves, and a grid of what each augmentation does to the same images, in
section4_transfer/runs/augmentation/.
"""
from __future__ import annotations

import torch

from section4_transfer.common import add_cifar_flags, load_cifar, make_loaders, train_and_test
from section4_transfer.models import build_model
from shared_utils import cli, device as devices, plots, runs, stats
from shared_utils.seed import seed_everything
from shared_utils.tensor_pipeline import AUGMENTATIONS
from shared_utils.training import TrainConfig

CONDITIONS = {
    "none": (),
    "flip": ("flip",),
    "crop": ("crop",),
    "color": ("color",),
    "rotation": ("rotation",),
    "cutout": ("cutout",),
    "randaugment": ("randaugment",),
    "combined": ("flip", "crop", "color", "rotation", "cutout"),
}


def example_grid(ds, path, seed: int) -> None:
    images = torch.from_numpy(ds.train.x[:6]).float() / 255
    panels, titles = [], []
    for name in ["none"] + [c for c in CONDITIONS if c not in ("none", "combined")] + ["combined"]:
        x = images.clone()
        gen = torch.Generator().manual_seed(seed)
        for aug in CONDITIONS[name]:
            x = AUGMENTATIONS[aug]()(x, gen)
        for i in range(len(x)):
            panels.append((x[i].clamp(0, 1) * 255).round().byte().numpy())
            titles.append(name if i == 0 else "")
    plots.image_grid(panels, path, titles=titles, ncols=6, colorbar_label=None,
                     title="Each augmentation on the same six training images (one row each)")


def main(argv=None):
    p = cli.parser(__doc__, epochs=5, batch_size=64, lr=1e-3, seeds=True,
                   quick={"epochs": 1, "train_subset": 256, "test_subset": 256, "val_size": 128})
    p.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    add_cifar_flags(p)
    args = cli.parse(p, argv)
    device = devices.resolve(args.device)
    ds = load_cifar(args)
    out = runs.root(__file__, "augmentation", args.out)
    example_grid(ds, out / "examples.png", args.seed)
    results, paths = {}, {}
    for name in args.conditions:
        for seed in args.seeds:
            seed_everything(seed)
            run = runs.RunDir(__file__, f"augmentation/{name}/seed{seed}", args, resume=args.resume, condition=name)
            cfg = TrainConfig(epochs=args.epochs, lr=args.lr, optimizer="adam", weight_decay=0.0, schedule="cosine")
            s = train_and_test(build_model("cnn"), make_loaders(ds, args, device, CONDITIONS[name], seed=seed), cfg,
                               run, device, args=args, title=f"Small CNN, augmentation: {name} (seed {seed})")
            results.setdefault(name, {}).setdefault("test acc (%)", []).append(100 * s["test_acc"])
            results[name].setdefault("train - val acc (points)", []).append(
                100 * (s["final_train_acc"] - s["final_val_acc"]))
            paths.setdefault(name, []).append(run.path)
            print(f"{name:12s} seed {seed}: test accuracy {s['test_acc']:.4f}")
    table = stats.write_comparison(results, out / "table", caption=f"Augmentation study: small CNN, {args.epochs} "
                                   f"epochs, {len(ds.train)} training images, seeds {args.seeds}; mean ± std [95% CI]")
    values, errors = stats.bar_values(results, {"test acc (%)": "test accuracy"})
    plots.grouped_bars(values, out / "accuracy.png", errors=errors,
                       title=f"Test accuracy by augmentation (mean and 95% CI over {len(args.seeds)} seeds)",
                       xlabel="training-time augmentation", ylabel="test accuracy (%)")
    plots.compare_curves(paths, out / "curves.png", metrics=("train_loss", "val_acc"),
                         title="Augmentation study: training loss and validation accuracy")
    print(table)
    return results


if __name__ == "__main__":
    cli.run(main)
