"""Where does a trained MLP go wrong? Test accuracy, per-class accuracy, confusion matrix, worst mistakes.

Loads a checkpoint written by section1_mlp/train.py (default: the ReLU run) and writes to
section1_mlp/runs/evaluate/<run name>/: summary.json with overall and per-class test accuracy,
confusion.png, per_class.png and confident_mistakes.png (the wrong predictions the model
was surest of).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from section1_mlp.mlp import MLP
from section2_optimization.losses import log_softmax
from section2_optimization.trainer import predict
from section1_mlp import figures
from shared_utils import cli, data, plots, runs
from shared_utils.errors import UserError

DEFAULT_CKPT = Path(__file__).resolve().parent / "runs" / "activation_compare" / "relu" / "seed_0" / "best.npz"
MAKE_ONE = "python section1_mlp/train.py"


def main(argv=None):
    p = cli.parser(__doc__, trains=False)
    p.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT, help="an MLP .npz checkpoint")
    p.add_argument("--mistakes", type=cli.positive_int, default=24, help="wrong predictions to show")
    args = cli.parse(p, argv)
    if not args.ckpt.is_file():
        raise UserError(f"no checkpoint at {args.ckpt}; make one with `{MAKE_ONE}` or pass --ckpt PATH")
    try:
        model = MLP.from_state_dict(runs.load_npz(args.ckpt))
    except ValueError as exc:
        raise UserError(f"{args.ckpt} is not an MLP checkpoint ({exc}); make one with `{MAKE_ONE}`") from None
    ds = data.mnist(args.data_dir, quiet=args.quiet)
    x_test, y_test = ds.arrays("test", flatten=True)
    if x_test.shape[1] != model.sizes[0]:
        raise UserError(f"{args.ckpt} expects {model.sizes[0]} inputs, MNIST has {x_test.shape[1]}")
    # a study trial's checkpoint sits in <condition>/seed_<n>/: name the evaluation after the condition
    folder = args.ckpt.parent
    name = f"{folder.parent.name}/{folder.name}" if folder.name.startswith("seed_") else folder.name
    run = runs.RunDir(__file__, f"evaluate/{name}", args)
    probs = np.exp(log_softmax(predict(model, x_test)))
    pred = probs.argmax(1)
    k = ds.num_classes
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_test, pred), 1)
    per_class = confusion.diagonal() / confusion.sum(1)
    accuracy = float((pred == y_test).mean())
    figures.confusion_matrix(confusion, ds.classes, run / "confusion.png",
                           title=f"MNIST test confusion matrix ({accuracy:.2%} correct)")
    plots.grouped_bars({c: {"test accuracy": 100 * a} for c, a in zip(ds.classes, per_class)},
                       run / "per_class.png", title="Per-class test accuracy", xlabel="digit",
                       ylabel="accuracy (%)", ylim=(max(0, 100 * per_class.min() - 5), 100.5))
    wrong = np.flatnonzero(pred != y_test)
    worst = wrong[np.argsort(-probs[wrong, pred[wrong]])][: args.mistakes]
    plots.image_grid(ds.test.x[worst], run / "confident_mistakes.png",
                     title="Most confident mistakes (true -> predicted, confidence)",
                     titles=[f"{y_test[i]}->{pred[i]} {probs[i, pred[i]]:.0%}" for i in worst], ncols=8)
    summary = run.summary(checkpoint=str(args.ckpt), test_acc=accuracy,
                          per_class_acc={c: float(a) for c, a in zip(ds.classes, per_class)},
                          errors=int(len(wrong)), test_size=int(len(y_test)))
    print(f"test accuracy {accuracy:.4f}; worst class {ds.classes[int(per_class.argmin())]} "
          f"({per_class.min():.4f}) -> {run.path}")
    return summary


if __name__ == "__main__":
    cli.run(main)
