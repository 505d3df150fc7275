"""Why is model.eval() mandatory at inference? A modern MLP on MNIST and the single-image stress test.

The modern MLP (784-512-256-10; each hidden layer Linear, BatchNorm1d, ReLU, Dropout(0.2); Adam) is trained
with the engine and must reach 98% test accuracy (asserted on a full run). Then one test image, batch
size 1, goes through it in both modes:
- eval mode: batch norm uses its running mean and variance and dropout is off: the prediction is correct
  and confident (asserted), and 100 passes give 100 identical outputs.
- train mode: batch norm normalises with the statistics of the current batch, and one image has one value
  per channel, so there is no variance to divide by: PyTorch refuses with a ValueError ("Expected more than
  1 value per channel when training"), caught here and explained.
- with batch norm removed (the same MLP without it, trained the same way), train mode runs, and dropout
  draws a new mask on every pass: 100 passes give 100 different outputs (their spread is the figure), and on
  a hard image the predicted class itself changes.

Outputs in projects/pytorch_mechanics/runs/modern_mlp/: batchnorm/ and no_batchnorm/ run folders,
dropout_spread.png (the true class's probability over 100 train-mode passes against the eval-mode value),
stress_test.md/.csv and summary.json.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from projects.pytorch_mechanics import figures
from shared_utils import cli, data, runs, stats
from shared_utils.atomic import atomic_write_json
from shared_utils.pytorch import device as devices
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit
from shared_utils.pytorch.pipeline import loaders
from shared_utils.pytorch.models import MLP
from shared_utils.seed import seed_everything

HP = {"epochs": 5, "batch_size": 128, "lr": 1e-3, "hidden": (512, 256), "dropout": 0.2}
TARGET = 0.98           # test accuracy of the batch-norm model on a full run
PASSES = 100            # forward passes of one image in train mode
BATCHNORM_ERROR = "Expected more than 1 value per channel when training"
QUICK = {"epochs": 1, "limit_train": 3000}


def build(batchnorm: bool, seed: int) -> nn.Module:
    seed_everything(seed)
    return MLP(hidden=HP["hidden"], in_features=28 * 28, classes=10, dropout=HP["dropout"], batchnorm=batchnorm)


def train(batchnorm: bool, args, ds, device, root) -> tuple[nn.Module, dict]:
    name = "batchnorm" if batchnorm else "no_batchnorm"
    model = build(batchnorm, args.seed)
    train_loader, val, test = loaders(ds, batch_size=args.batch_size, seed=args.seed, device=device)
    run = runs.RunDir(__file__, f"modern_mlp/{name}", args, path=root / name)
    cfg = TrainConfig(epochs=args.epochs, lr=args.lr, optimizer="adam", weight_decay=0.0, schedule="cosine")
    fit(model, train_loader, val, cfg, device=device, run=run, quiet=args.quiet, desc=name)
    summary = run.summary(batchnorm=batchnorm, test_acc=evaluate(model, test, device)["acc"])
    return model, summary


@torch.no_grad()
def probabilities(model: nn.Module, x: torch.Tensor, mode: str, passes: int = PASSES) -> np.ndarray:
    """Softmax outputs of ``passes`` forward passes of the batch ``x`` (one image) in ``mode``."""
    model.train(mode == "train")
    return np.stack([torch.softmax(model(x), 1)[0].cpu().numpy() for _ in range(passes)])


def train_mode_error(model: nn.Module, x: torch.Tensor) -> str | None:
    """The error a train-mode forward pass of one image raises (None if it runs)."""
    model.train()
    try:
        with torch.no_grad():
            model(x)
    except ValueError as exc:
        return str(exc)
    finally:
        model.eval()
    return None


def stress_test(bn_model: nn.Module, plain_model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                seed: int) -> dict:
    """The single-image test on ``images`` (each a batch of one): eval mode, train mode with batch norm,
    train mode without it. Returns the measured figures; asserts the claims."""
    torch.manual_seed(seed)        # the dropout masks drawn below
    out = {"images": []}
    for k in range(len(images)):
        x, y = images[k:k + 1], int(labels[k])
        eval_bn = probabilities(bn_model, x, "eval")
        error = train_mode_error(bn_model, x)
        eval_plain, train_plain = probabilities(plain_model, x, "eval"), probabilities(plain_model, x, "train")
        assert np.ptp(eval_bn, axis=0).max() == 0.0 and np.ptp(eval_plain, axis=0).max() == 0.0, \
            "eval mode must give the same output on every pass"
        assert error is not None and BATCHNORM_ERROR in error, f"batch norm on one image should refuse: {error!r}"
        predictions = train_plain.argmax(1)
        out["images"].append({
            "label": y, "eval_prediction": int(eval_bn[0].argmax()), "eval_confidence": float(eval_bn[0].max()),
            "eval_prediction_no_bn": int(eval_plain[0].argmax()), "eval_p_true_no_bn": float(eval_plain[0, y]),
            "train_mode_error": error.splitlines()[0],
            "train_p_true": train_plain[:, y], "train_p_true_std": float(train_plain[:, y].std()),
            "train_p_true_range": (float(train_plain[:, y].min()), float(train_plain[:, y].max())),
            "distinct_outputs": len({tuple(np.round(p, 7)) for p in train_plain}),
            "train_predictions": {int(c): int((predictions == c).sum()) for c in np.unique(predictions)},
        })
        assert out["images"][-1]["distinct_outputs"] > 1, "dropout in train mode should vary the output"
    return out


def pick_images(bn_model: nn.Module, plain_model: nn.Module, test) -> tuple[torch.Tensor, torch.Tensor]:
    """The first test image, and the test image the dropout-only model (eval mode) gets right with the lowest
    confidence: an easy case and a hard one."""
    x, y = test.batch(torch.arange(len(test.labels), device=test.device))
    with torch.no_grad():
        plain_model.eval()
        p = torch.softmax(plain_model(x), 1)
    right = p.argmax(1) == y
    confidence = torch.where(right, p.max(1).values, torch.full_like(p[:, 0], 2.0))
    hard = int(confidence.argmin())
    index = torch.tensor([0, hard], device=test.device)
    return x[index], y[index]


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], quick=QUICK)
    args = cli.parse(p, argv)
    device = devices.resolve(args.device)
    ds = data.mnist_from_settings(cli.data_settings(args), subset_mode="random",
                                  limit_test=getattr(args, "limit_test", None))
    root = runs.root(__file__, "modern_mlp", out=args.out)
    bn_model, bn = train(True, args, ds, device, root)
    plain_model, plain = train(False, args, ds, device, root)
    _, _, test = loaders(ds, batch_size=args.batch_size, seed=args.seed, device=device)
    images, labels = pick_images(bn_model, plain_model, test)
    result = stress_test(bn_model, plain_model, images, labels, args.seed)
    easy = result["images"][0]
    assert easy["eval_prediction"] == easy["label"], f"eval mode misclassified the first test image: {easy}"
    full_run = args.limit_train is None and args.epochs >= HP["epochs"]
    if full_run:
        assert bn["test_acc"] >= TARGET, f"the modern MLP reached {bn['test_acc']:.4f}, below {TARGET}"
        assert easy["eval_confidence"] > 0.9, easy["eval_confidence"]
    names = ("first test image", "hardest correctly classified test image")
    rows = [[names[i], r["label"], f"{r['eval_prediction']} ({100 * r['eval_confidence']:.1f}%)",
             r["train_mode_error"], f"{100 * r['eval_p_true_no_bn']:.1f}%",
             f"{100 * r['train_p_true'].mean():.1f} ± {100 * r['train_p_true_std']:.1f}% "
             f"[{100 * r['train_p_true_range'][0]:.1f}, {100 * r['train_p_true_range'][1]:.1f}]",
             ", ".join(f"{c}: {n}" for c, n in r["train_predictions"].items())] for i, r in enumerate(result["images"])]
    stats.write_table(["image", "label", "eval mode (batch norm): prediction (confidence)",
                       "train mode (batch norm)", "eval mode, no batch norm: p(true class)",
                       f"train mode, no batch norm: p(true class) over {PASSES} passes, mean ± std [min, max]",
                       "train-mode predictions (class: passes)"], rows, root / "stress_test",
                      caption=f"Test accuracy: {100 * bn['test_acc']:.2f}% with batch norm, "
                              f"{100 * plain['test_acc']:.2f}% without ({args.epochs} epoch(s))")
    figures.histograms([{"samples": {f"train mode, {PASSES} passes": 100 * r["train_p_true"]},
                       "lines": {"eval mode (every pass)": 100 * r["eval_p_true_no_bn"]},
                       "title": f"{names[i]} (label {r['label']})",
                       "xlabel": "probability of the true class (%)", "ylabel": "forward passes"}
                      for i, r in enumerate(result["images"])], root / "dropout_spread.png",
                     title="One image, MLP without batch norm: dropout in train mode changes every prediction")
    summary = {"test_acc_batchnorm": bn["test_acc"], "test_acc_no_batchnorm": plain["test_acc"],
               "full_run": full_run, **{f"{k}_{i}": (v.tolist() if isinstance(v, np.ndarray) else v)
                                        for i, r in enumerate(result["images"]) for k, v in r.items()}}
    atomic_write_json(root / "summary.json", summary)
    print(f"test accuracy: {100 * bn['test_acc']:.2f}% (batch norm), {100 * plain['test_acc']:.2f}% (none)")
    for row in rows:
        print(" | ".join(map(str, row)))
    print(f"outputs in {root}")
    return {"batchnorm": bn, "no_batchnorm": plain, **result}


if __name__ == "__main__":
    cli.run(main)
