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

from section4_transfer.experiment import QUICK, cifar_study, load_cifar, make_loaders, study_parser, train_and_test
from shared_utils import cli, plots, runs
from shared_utils.pytorch.checkpoint import load_torch
from shared_utils.pytorch.engine import TrainConfig
from shared_utils.pytorch.models import build_model, count_parameters
from shared_utils.study import start

# ---- hyper-parameters (He et al. 2016, section 4.2, on a CPU budget); --epochs, --batch-size, --lr override
HP = {"epochs": 10, "batch_size": 128, "lr": 0.1, "optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4,
      "schedule": "cosine", "warmup_epochs": 1.0, "augment": ["crop", "flip"], "kind": "resnet", "depth": 20}


class GradientRecorder:
    """First-conv gradient norm every step; all conv layers' norms at chosen steps. Rows are appended to the
    run folder as they come (an interrupted trial keeps them); a resumed trial first cuts its files back to
    the step of the checkpoint it resumes from, so no step is recorded twice and none is lost."""

    def __init__(self, snapshot_steps, run_path, resume_step: int | None = None):
        self.first_conv: dict[int, float] = {}
        self.snapshots: dict[str, list[float]] = {}
        self.snapshot_steps = set(snapshot_steps)
        self.path = run_path / "grad_norms.csv"
        self.snapshot_path = run_path / "grad_snapshots.json"
        if resume_step is not None and self.path.exists():    # the history up to the checkpoint, no further
            rows = np.loadtxt(self.path, delimiter=",", skiprows=1, ndmin=2)
            self.first_conv = {int(step): float(norm) for step, norm in rows if step <= resume_step}
            if self.snapshot_path.exists():
                self.snapshots = {k: v for k, v in runs.read_json(self.snapshot_path).items() if int(k) <= resume_step}
        runs.atomic_write_text(self.path, self.to_csv())
        runs.atomic_write_json(self.snapshot_path, self.snapshots)

    def __call__(self, step, model):
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        self.first_conv[step] = float(convs[0].weight.grad.norm())
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([step, self.first_conv[step]])
        if step in self.snapshot_steps:
            self.snapshots[str(step)] = [float(c.weight.grad.norm()) for c in convs]
            runs.atomic_write_json(self.snapshot_path, self.snapshots)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["step", "first_conv_grad_norm"])
        writer.writerows(sorted(self.first_conv.items()))
        return buffer.getvalue()


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = load_cifar(config)
    model = build_model(config["kind"], depth=config["depth"])
    steps = config["epochs"] * -(-len(ds.train) // config["batch_size"])
    resume_step = None
    if config["resume"] and (run / "last.pt").exists():
        state = load_torch(run / "last.pt")
        resume_step = int(state["step"]) if isinstance(state, dict) and "step" in state else None   # else fit refuses it
    recorder = GradientRecorder(snapshot_steps(steps), run.path, resume_step)
    s = train_and_test(model, make_loaders(ds, config, device, config["augment"], seed=config["seed"]),
                       TrainConfig.from_config(config), run, device, config=config,
                       title=f"{config['condition']} on CIFAR-10",
                       on_backward=recorder, parameters=count_parameters(model), depth=config["depth"],
                       residual=config["kind"] == "resnet")
    runs.atomic_write_text(run / "grad_norms.csv", recorder.to_csv())
    runs.atomic_write_json(run / "grad_snapshots.json", recorder.snapshots)
    return s


def snapshot_steps(total: int) -> list[int]:
    return sorted({1, max(1, total // 2), total})


def main(argv=None):
    # the quick preset keeps a 56-layer pair: even two steps show its plain net's unstable gradients
    p = study_parser(__doc__, HP, quick={**QUICK, "depths": [8, 56]})
    p.add_argument("--depths", type=cli.bounded_int(8, 1202, " layers"), nargs="+", default=[20, 56], metavar="DEPTH",
                   help="one or more depths of the form 6n+2; each trains as a plain and a residual net")
    p.add_argument("--warmup", type=cli.nonneg_float, default=HP["warmup_epochs"],
                   help="epochs of linear learning-rate warm-up (He et al. warm up their deepest nets; without "
                        "it, a 56-layer ResNet at lr 0.1 diverges early on short budgets)")
    args = cli.parse(p, argv)
    if any((d - 2) % 6 for d in args.depths):
        p.error(f"argument --depths: each depth must be 6n+2 (8, 14, 20, 32, 44, 56, 110), got {args.depths}")
    conditions = {f"{'ResNet' if kind == 'resnet' else 'Plain'}-{depth}": {"kind": kind, "depth": depth}
                  for kind in ("plain", "resnet") for depth in args.depths}
    study = cifar_study(__file__, "resnet_vs_plain", trial, conditions, args, HP, warmup_epochs=args.warmup)
    result = study.run_or_load(args)
    out = study.path
    table = result.report({"final_train_loss": "final train loss", "test_acc": "test acc (%)",
                           "parameters": "parameters"}, scale={"test_acc": 100},
                          bars=["test acc (%)"], bar_ylabel="test accuracy (%)", bar_xlabel="network",
                          curves=("train_loss", "val_acc"), logy=("train_loss",),
                          curve_title="Plain vs residual networks: training loss and validation accuracy",
                          caption=f"Plain vs residual, {args.epochs} epochs, seeds {args.seeds}; mean ± std [95% CI]")
    first = {name: paths[0] for name, paths in result.run_paths().items() if (paths[0] / "grad_norms.csv").exists()}
    series = {}
    for name, path in first.items():
        norms = np.loadtxt(path / "grad_norms.csv", delimiter=",", skiprows=1, ndmin=2)
        series[name] = (norms[:, 0], norms[:, 1])
    if series:
        plots.line_plot(series, out / "first_conv_grad_norm.png", logy=True, markers=False,
                        title=f"Gradient-flow proxy: gradient norm of the first convolution's weights (seed "
                              f"{args.seeds[0]})", xlabel="training iteration", ylabel="||dL/dW_conv1|| (log scale)")
        snapshots = {name: runs.read_json(path / "grad_snapshots.json") for name, path in first.items()}
        steps = sorted({int(k) for per in snapshots.values() for k in per})
        panels = []
        for step in steps:
            per_step = {name: (np.arange(1, len(snap[str(step)]) + 1), snap[str(step)])
                        for name, snap in snapshots.items() if str(step) in snap}
            panels.append({"series": per_step, "title": f"iteration {step}", "xlabel": "conv layer (input side = 1)",
                           "ylabel": "||dL/dW|| (log scale)", "logy": True, "markers": False})
        plots.line_panels(panels, out / "layer_grad_norms.png", ncols=len(panels),
                          title="Per-layer weight-gradient norms at three points in training")
    result.finish(table)
    comparison = {name: {"final train loss": sum(v) / len(v), "test acc": sum(a) / len(a)}
                  for (name, v), a in zip(result.values("final_train_loss").items(), result.values("test_acc").values())}
    runs.atomic_write_json(out / "comparison.json", comparison)
    return comparison


if __name__ == "__main__":
    cli.run(main)
