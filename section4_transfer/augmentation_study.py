"""Which data augmentations help a small CNN on CIFAR-10, alone and together?

Seven conditions plus a baseline, same model (the small CNN), data, epochs and optimizer, only
the training-time augmentation differs: none, horizontal flip, random crop (4-pixel padding),
colour jitter, rotation (±15°), cutout (8x8) and RandAugment (torchvision's policy), then
flip + crop + colour + rotation + cutout combined. Augmentations run on whole batches of
tensors (shared_utils.pytorch.pipeline). Reports test accuracy mean ± 95% CI over --seeds (bar
chart), curves, and a grid of what each augmentation does to the same images, in
section4_transfer/runs/augmentation/.
"""
from __future__ import annotations

import torch

from section4_transfer.experiment import (cifar_study, gap_points, load_cifar, make_loaders, study_parser,
                                         train_and_test)
from shared_utils import cli, plots
from shared_utils.study import start
from shared_utils.pytorch.engine import TrainConfig
from shared_utils.pytorch.models import build_model
from shared_utils.pytorch.pipeline import AUGMENTATIONS

# ---- hyper-parameters; --epochs, --batch-size and --lr override them
HP = {"epochs": 5, "batch_size": 64, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine",
      "augment": []}
AUGMENT = {
    "none": [],
    "flip": ["flip"],
    "crop": ["crop"],
    "color": ["color"],
    "rotation": ["rotation"],
    "cutout": ["cutout"],
    "randaugment": ["randaugment"],
    "combined": ["flip", "crop", "color", "rotation", "cutout"],
}
CONDITIONS = {name: {"augment": augment} for name, augment in AUGMENT.items()}


def example_grid(ds, path, seed: int) -> None:
    images = torch.from_numpy(ds.train.x[:6]).float() / 255
    panels, titles = [], []
    for name in ["none"] + [c for c in CONDITIONS if c not in ("none", "combined")] + ["combined"]:
        x = images.clone()
        gen = torch.Generator().manual_seed(seed)
        for aug in AUGMENT[name]:
            x = AUGMENTATIONS[aug]()(x, gen)
        for i in range(len(x)):
            panels.append((x[i].clamp(0, 1) * 255).round().byte().numpy())
            titles.append(name if i == 0 else "")
    plots.image_grid(panels, path, titles=titles, ncols=6, colorbar_label=None,
                     title="Each augmentation on the same six training images (one row each)")


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = load_cifar(config)
    return train_and_test(build_model("cnn"), make_loaders(ds, config, device, config["augment"], seed=config["seed"]),
                       TrainConfig.from_config(config), run, device, config=config,
                       title=f"Small CNN, augmentation: {config['condition']} (seed {config['seed']})")


def main(argv=None):
    p = study_parser(__doc__, HP)
    p.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    args = cli.parse(p, argv)
    study = cifar_study(__file__, "augmentation", trial, {c: CONDITIONS[c] for c in args.conditions}, args, HP)
    result = study.run_or_load(args)
    example_grid(load_cifar(study.base), study.path / "examples.png", args.seed)
    table = result.report({"test_acc": "test acc (%)"}, scale=100,
                          extra={c: {"train - val acc (points)": v} for c, v in gap_points(result).items()},
                          caption=f"Augmentation study: small CNN, {args.epochs} epochs, seeds {args.seeds}; "
                                  "mean ± std [95% CI]",
                          bar_title=f"Test accuracy by augmentation (mean and 95% CI over {len(args.seeds)} seeds)",
                          bar_xlabel="training-time augmentation", bar_ylabel="test accuracy (%)",
                          curve_title="Augmentation study: training loss and validation accuracy")
    result.finish(table)
    return result.values("test_acc", 100)


if __name__ == "__main__":
    cli.run(main)
