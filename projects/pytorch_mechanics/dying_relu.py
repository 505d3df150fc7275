"""Why does a network stop learning? The dying ReLU in PyTorch, and He initialisation as the fix.

A 784-128-64-10 ReLU MLP sees MNIST pixels in [0, 1] (not normalised: every input is non-negative). With
every weight made negative (-|w| of a He draw) and zero biases, every first-layer pre-activation is <= 0,
every ReLU outputs 0 and passes gradient 0, so autograd's .grad is exactly 0.0 for every weight of every
layer at every step, and for the hidden biases too. Only the output bias receives a gradient: it learns
the class frequencies, so the loss can fall from ln 10 = 2.3026 only to the entropy of the label
frequencies (about 2.301 on MNIST), and every image gets the same prediction (accuracy: one class's share,
the most frequent class's once the bias has converged). The same
net with He (Kaiming) initialisation, std sqrt(2 / fan_in), trains. Every claim is asserted.

Outputs in projects/pytorch_mechanics/runs/dying_relu/: negative/ and he/ run folders, gradient_norms.png
(each layer's weight-gradient norm per step, symlog scale so exact zeros show), loss.png (the loss per step
against ln 10 and the label entropy), summary.md/.csv.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from shared_utils import cli, data, plots, runs, stats
from shared_utils.errors import UserError
from shared_utils.pytorch import device as devices
from shared_utils.pytorch.engine import TrainConfig, classification, fit
from shared_utils.pytorch.pipeline import loaders
from shared_utils.pytorch.models import MLP
from shared_utils.seed import seed_everything

HP = {"epochs": 2, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "hidden": (128, 64)}
QUICK = {"epochs": 1, "limit_train": 2400}
INITS = ("negative", "he")


def build(init: str, seed: int) -> nn.Module:
    """The MLP with He-normal weights and zero biases; ``negative`` flips every weight's sign to minus."""
    seed_everything(seed)
    model = MLP(hidden=HP["hidden"], in_features=28 * 28, classes=10)
    for layer in linears(model):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
        if init == "negative":
            with torch.no_grad():
                layer.weight.abs_().neg_()
    return model


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def label_entropy(labels: np.ndarray) -> float:
    """The lowest cross-entropy a constant prediction can reach: the entropy of the class frequencies."""
    p = np.bincount(labels, minlength=10) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def train(init: str, args, ds, device, root) -> dict:
    """Train one initialisation, recording each layer's weight- and bias-gradient norm and the loss per step."""
    model = build(init, args.seed)
    train_loader, val, _ = loaders(ds, batch_size=args.batch_size, seed=args.seed, device=device, normalise=False)
    layers = linears(model)
    grads = {f"layer {i + 1} weight": [] for i in range(len(layers))}
    grads.update({f"layer {i + 1} bias": [] for i in range(len(layers))})
    losses: list[float] = []
    task = classification()

    def recording_task(net, batch):
        loss, metrics = task(net, batch)
        losses.append(loss.item())
        return loss, metrics

    def record(step, net):
        for i, layer in enumerate(layers):
            grads[f"layer {i + 1} weight"].append(float(layer.weight.grad.norm()))
            grads[f"layer {i + 1} bias"].append(float(layer.bias.grad.norm()))

    run = runs.RunDir(__file__, f"dying_relu/{init}", args, path=root / init)
    cfg = TrainConfig(epochs=args.epochs, lr=args.lr, optimizer="sgd", momentum=HP["momentum"], nesterov=False,
                      weight_decay=0.0, schedule="none")
    fit(model, train_loader, val, cfg, device=device, run=run, quiet=args.quiet, desc=init,
        loss_fn=recording_task, on_backward=record)
    weight_max = max(max(v) for k, v in grads.items() if k.endswith("weight"))
    hidden_bias_max = max(max(grads[f"layer {i + 1} bias"]) for i in range(len(layers) - 1))
    summary = run.summary(init=init, max_weight_grad_norm=weight_max, max_hidden_bias_grad_norm=hidden_bias_max,
                          output_bias_grad_norm_first=grads[f"layer {len(layers)} bias"][0],
                          first_loss=losses[0], last_loss=losses[-1], min_loss=min(losses), steps=len(losses))
    return {"summary": summary, "grads": grads, "losses": losses, "path": run.path}


def check(results: dict, entropy: float, shares: np.ndarray) -> None:
    """The claims of the docstring, as assertions on the recorded numbers."""
    dead, he = results["negative"]["summary"], results["he"]["summary"]
    assert dead["max_weight_grad_norm"] == 0.0, f"a negative-init weight got gradient {dead['max_weight_grad_norm']}"
    assert dead["max_hidden_bias_grad_norm"] == 0.0
    assert dead["output_bias_grad_norm_first"] > 0.0, "the output bias should still learn the class frequencies"
    assert abs(dead["first_loss"] - math.log(10)) < 1e-6, dead["first_loss"]
    assert dead["min_loss"] >= entropy - 0.02, (dead["min_loss"], entropy)   # a batch's labels vary a little
    # every image gets the same logits (the output bias): accuracy is exactly one class's share of the images
    assert np.isclose(shares, dead["final_val_acc"], atol=1e-9).any(), (dead["final_val_acc"], shares)
    assert he["max_weight_grad_norm"] > 0.0 and he["final_val_acc"] > shares.max() + 0.5, he["final_val_acc"]


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], quick=QUICK)
    args = cli.parse(p, argv)
    device = devices.resolve(args.device)
    ds = data.mnist_from_settings(cli.data_settings(args), subset_mode="random",
                                  limit_test=getattr(args, "limit_test", None))
    if args.batch_size > len(ds.train) // 4:    # the claims need several steps per epoch to show training
        raise UserError(f"--batch-size {args.batch_size} leaves fewer than 4 steps per epoch on {len(ds.train):,} "
                        f"training images; use at most {len(ds.train) // 4}")
    root = runs.root(__file__, "dying_relu", out=args.out)
    results = {init: train(init, args, ds, device, root) for init in INITS}
    entropy = label_entropy(ds.train.y)
    shares = np.bincount(ds.val.y, minlength=10) / len(ds.val.y)
    majority = float(shares.max())
    check(results, entropy, shares)
    names = {"negative": "negative weights", "he": "He init"}
    plots.line_panels([{"series": {k: (np.arange(1, len(v) + 1), v) for k, v in r["grads"].items()
                                   if k.endswith("weight") or k == f"layer {len(HP['hidden']) + 1} bias"},
                        "title": f"{names[init]}: gradient norm per layer", "xlabel": "training step",
                        "ylabel": "||dL/dW|| (L2 norm; symlog, 0 shown)", "symlogy": True, "linthresh": 1e-4,
                        "markers": False} for init, r in results.items()],
                      root / "gradient_norms.png",
                      title="Negative weights on non-negative inputs: every weight gradient is exactly 0.0")
    steps = {names[init]: (np.arange(1, len(r["losses"]) + 1), r["losses"]) for init, r in results.items()}
    n = max(len(r["losses"]) for r in results.values())
    steps["ln 10 (uniform prediction)"] = ([1, n], [math.log(10)] * 2)
    steps["entropy of the label frequencies"] = ([1, n], [entropy] * 2)
    plots.line_plot(steps, root / "loss.png", markers=False, title="Training loss per step: the dead net never moves",
                    xlabel="training step", ylabel="training loss (cross-entropy, nats)")
    rows = [[names[i], f"{r['summary']['max_weight_grad_norm']:.3g}", f"{r['summary']['max_hidden_bias_grad_norm']:.3g}",
             f"{r['summary']['first_loss']:.4f}", f"{r['summary']['last_loss']:.4f}",
             f"{100 * r['summary']['final_val_acc']:.2f}"] for i, r in results.items()]
    stats.write_table(["init", "max weight-gradient norm (any layer, any step)", "max hidden-bias gradient norm",
                       "first loss", "last loss", "validation accuracy (%)"], rows, root / "summary",
                      caption=f"{args.epochs} epoch(s), SGD lr {args.lr}; ln 10 = {math.log(10):.4f}, label entropy "
                              f"{entropy:.4f}, most frequent class {100 * majority:.2f}% of validation images")
    for row in rows:
        print(" | ".join(row))
    print(f"all claims held; outputs in {root}")
    return results


if __name__ == "__main__":
    cli.run(main)
