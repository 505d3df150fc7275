"""Do shortcuts let deeper networks train? PlainNet vs ResNet at several depths on CIFAR-10.

He et al. 2016 (section 4.2): the 56-layer plain net trains worse than the 20-layer one
(degradation), while the 56-layer ResNet does not. The four nets share everything but depth
and the shortcut: SGD with Nesterov momentum 0.9, lr 0.1, weight decay 1e-4, cosine decay,
batch 128, crop + flip augmentation, one epoch of linear warm-up. Besides training loss and validation accuracy, a
gradient-flow proxy is recorded: the norm of the gradient of the first convolution's weights
at every iteration, and every conv layer's gradient norm at a few points in training.
Outputs in section4_transfer/runs/resnet_vs_plain/.
"""
from __future__ import annotations

import csv
import io

import numpy as np
import torch

from section4_transfer.common import add_cifar_flags, load_cifar, make_loaders, train_and_test
from section4_transfer.models import build_model, count_parameters
from shared_utils import cli, device as devices, plots, runs
from shared_utils.seed import seed_everything
from shared_utils.training import TrainConfig


class GradientRecorder:
    """First-conv gradient norm every step; all conv layers' norms at chosen steps."""

    def __init__(self, snapshot_steps):
        self.first_conv: list[float] = []
        self.snapshots: dict[int, list[float]] = {}
        self.snapshot_steps = set(snapshot_steps)

    def __call__(self, step, model):
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        self.first_conv.append(float(convs[0].weight.grad.norm()))
        if step in self.snapshot_steps:
            self.snapshots[step] = [float(c.weight.grad.norm()) for c in convs]

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["step", "first_conv_grad_norm"])
        writer.writerows(enumerate(self.first_conv, start=1))
        return buffer.getvalue()


def main(argv=None):
    p = cli.parser(__doc__, epochs=10, batch_size=128, lr=0.1,
                   quick={"epochs": 1, "train_subset": 256, "test_subset": 256, "val_size": 128, "depths": [8, 14]})
    p.add_argument("--depths", type=cli.positive_int, nargs="+", default=[20, 56], metavar="DEPTH",
                   help="one or more depths of the form 6n+2; each trains as a plain and a residual net")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="epochs of linear learning-rate warm-up (He et al. warm up their deepest nets; without "
                        "it, a 56-layer ResNet at lr 0.1 diverges early on short budgets)")
    add_cifar_flags(p)
    args = cli.parse(p, argv)
    if any((d - 2) % 6 for d in args.depths):
        p.error(f"argument --depths: each depth must be 6n+2 (8, 14, 20, 32, 44, 56, 110), got {args.depths}")
    device = devices.resolve(args.device)
    ds = load_cifar(args)
    steps_per_epoch = -(-len(ds.train) // args.batch_size)
    total = args.epochs * steps_per_epoch
    snapshot_steps = sorted({1, max(1, total // 2), total})
    out = runs.root(__file__, "resnet_vs_plain", args.out)
    paths, recorders, summaries = {}, {}, {}
    for kind in ("plain", "resnet"):
        for depth in args.depths:
            seed_everything(args.seed)
            name = f"{'ResNet' if kind == 'resnet' else 'Plain'}-{depth}"
            model = build_model(kind, depth=depth)
            run = runs.RunDir(__file__, f"resnet_vs_plain/{name}", args, resume=args.resume, model=name)
            recorder = GradientRecorder(snapshot_steps)
            cfg = TrainConfig(epochs=args.epochs, lr=args.lr, optimizer="sgd", momentum=0.9, weight_decay=1e-4,
                              schedule="cosine", warmup_epochs=args.warmup)
            s = train_and_test(model, make_loaders(ds, args, device, augment_names=("crop", "flip")), cfg, run,
                               device, args=args, title=f"{name} on CIFAR-10", on_backward=recorder,
                               parameters=count_parameters(model), depth=depth, residual=kind == "resnet")
            runs.atomic_write_text(run / "grad_norms.csv", recorder.to_csv())
            runs.atomic_write_json(run / "grad_snapshots.json", recorder.snapshots)
            paths[name], recorders[name], summaries[name] = run.path, recorder, s
            print(f"{name}: final train loss {s['final_train_loss']:.3f}, test accuracy {s['test_acc']:.4f}")
    plots.compare_curves(paths, out / "curves.png", metrics=("train_loss", "val_acc"), logy=("train_loss",),
                         title="Plain vs residual networks: training loss and validation accuracy")
    plots.line_plot({name: (np.arange(1, len(r.first_conv) + 1), r.first_conv) for name, r in recorders.items()},
                    out / "first_conv_grad_norm.png", logy=True, markers=False,
                    title="Gradient-flow proxy: gradient norm of the first convolution's weights",
                    xlabel="training iteration", ylabel="||dL/dW_conv1|| (log scale)")
    panels = []
    for step in snapshot_steps:
        series = {name: (np.arange(1, len(r.snapshots[step]) + 1), r.snapshots[step])
                  for name, r in recorders.items() if step in r.snapshots}
        panels.append({"series": series, "title": f"iteration {step}", "xlabel": "conv layer (input side = 1)",
                       "ylabel": "||dL/dW|| (log scale)", "logy": True, "markers": False})
    plots.line_panels(panels, out / "layer_grad_norms.png", ncols=len(panels),
                      title="Per-layer weight-gradient norms at three points in training")
    table = {name: {"final train loss": s["final_train_loss"], "test acc": s["test_acc"]} for name, s in summaries.items()}
    runs.atomic_write_json(out / "comparison.json", table)
    return table


if __name__ == "__main__":
    cli.run(main)
