"""Which pixels drive the NumPy CNN's decision? Gradient saliency maps on MNIST test digits.

For each image, the gradient of a class score (the logit, before softmax) with respect to the
input pixels, back-propagated through the trained CNN; its absolute value is the saliency.
Correct predictions use the true class; mistakes use the predicted class, showing what the
network saw in favour of its wrong answer. Writes section3_cnn/runs/saliency/.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from section2_optimization.trainer import predict
from section3_cnn.model import load_cnn
from shared_utils import cli, data, plots, runs

DEFAULT_CKPT = Path(__file__).resolve().parent / "runs" / "mnist_numpy" / "best.npz"


def saliency(model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """|d logit[class] / d x| for each image: (N, 1, H, W) -> (N, H, W)."""
    model.requires_input_grad = True
    logits = model.forward(x, train=False)
    grad = np.zeros_like(logits)
    grad[np.arange(len(x)), classes] = 1.0
    return np.abs(model.backward(grad))[:, 0]


def main(argv=None):
    p = cli.parser(__doc__, trains=False)
    p.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT, help="checkpoint written by train_mnist_numpy.py")
    p.add_argument("--count", type=cli.positive_int, default=6, help="correct and wrong examples each")
    args = cli.parse(p, argv)
    model = load_cnn(args.ckpt)
    ds = data.mnist(args.data_dir, quiet=args.quiet)
    x, y = ds.arrays("test")
    pred = predict(model, x).argmax(1)
    run = runs.RunDir(__file__, "saliency", args, checkpoint=str(args.ckpt))
    correct = np.flatnonzero(pred == y)[:args.count]
    wrong = np.flatnonzero(pred != y)[:args.count]
    chosen = np.concatenate([correct, wrong])
    target = np.where(pred[chosen] == y[chosen], y[chosen], pred[chosen])
    heat = saliency(model, x[chosen], target)
    titles = [f"{'ok' if pred[i] == y[i] else 'WRONG'}: true {y[i]}, pred {pred[i]}" for i in chosen]
    plots.heatmap_overlay(ds.test.x[chosen, 0], heat, run / "saliency.png", titles=titles, ncols=args.count,
                          title="Saliency |d class score / d pixel|: correct (first row) and wrong predictions",
                          heat_label="saliency (normalised per image)")
    # how concentrated is the evidence on the ink? share of saliency falling on stroke pixels
    ink = ds.test.x[chosen, 0] > 64
    on_ink = float((heat * ink).sum() / heat.sum())
    summary = run.summary(test_acc=float((pred == y).mean()), correct_shown=len(correct), wrong_shown=len(wrong),
                          saliency_share_on_ink=on_ink, ink_share_of_pixels=float(ink.mean()))
    print(f"{len(correct)} correct and {len(wrong)} wrong predictions; {on_ink:.0%} of the saliency lies on the "
          f"{ink.mean():.0%} of pixels that are ink -> {run.path}")
    return summary


if __name__ == "__main__":
    cli.run(main)
