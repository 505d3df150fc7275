"""Why does a ReLU layer matter? A circular class boundary that no linear model can draw.

Points uniform in a square are labelled 1 inside a circle holding half the area. A linear
model and a 2-16-1 ReLU MLP (section 1's hand-written forward and backward pass) are trained
with the same loss (mean squared error on the 0/1 labels, as in the source notebook), optimizer
and budget. The linear model can do no better than a near-constant guess (MSE near 0.25);
the MLP bends its boundary into a polygon around the circle. Decision boundaries are drawn
for both.
"""
from __future__ import annotations

import numpy as np

from section1_mlp.mlp import MLP, PlainSGD
from section2_optimization.losses import mse
from section2_optimization.trainer import accuracy_of, evaluate, fit, predict
from shared_utils import cli, plots, runs
from shared_utils.data import Split
from shared_utils.seed import seed_everything

HALF = 1.5
RADIUS = HALF * np.sqrt(2 / np.pi)  # the circle holds half the square's area: balanced classes


def circular_task(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-HALF, HALF, (n, 2)).astype(np.float32)
    y = (np.hypot(x[:, 0], x[:, 1]) < RADIUS).astype(np.int64)
    return Split(x, y)


def main(argv=None):
    p = cli.parser(__doc__, epochs=300, batch_size=32, lr=0.1, quick={"epochs": 30})
    p.add_argument("--points", type=cli.points, default=1000)
    p.add_argument("--hidden", type=cli.width, default=16)
    args = cli.parse(p, argv)
    seed_everything(args.seed)
    train, val = circular_task(args.points, args.seed), circular_task(args.points // 4, args.seed + 1)
    targets = lambda s: s.y[:, None].astype(np.float32)  # noqa: E731  (0/1 regression targets)
    xx, yy = np.meshgrid(np.linspace(-HALF, HALF, 200), np.linspace(-HALF, HALF, 200))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(np.float32)
    results, panels, run_paths = {}, [], {}
    for name, sizes in (("linear", [2, 1]), (f"ReLU MLP 2-{args.hidden}-1", [2, args.hidden, 1])):
        run = runs.RunDir(__file__, f"nonlinearity/{'linear' if len(sizes) == 2 else 'relu_mlp'}", args)
        model = MLP(sizes, activation="relu", seed=args.seed)
        fit(model, mse, PlainSGD(model, args.lr), (train.x, targets(train)), (val.x, targets(val)),
            epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, run=run, accuracy=False,
            quiet=args.quiet)
        model.load_state_dict(runs.load_npz(run / "best.npz"))
        train_mse, _ = evaluate(model, mse, train.x, targets(train), accuracy=False)
        val_mse, _ = evaluate(model, mse, val.x, targets(val), accuracy=False)
        val_acc = accuracy_of(predict(model, val.x) - 0.5, val.y)  # predict class 1 above 0.5
        results[name] = run.summary(train_mse=train_mse, val_mse=val_mse, val_acc=val_acc,
                                    parameters=model.num_parameters())
        run_paths[name] = run.path
        panels.append({"title": f"{name}: val MSE {val_mse:.3f}, acc {val_acc:.1%}", "xx": xx, "yy": yy,
                       "zz": (predict(model, grid) > 0.5).reshape(xx.shape).astype(float),
                       "x": val.x, "y": val.y})
        print(f"{name:18s} train MSE {train_mse:.4f}  val MSE {val_mse:.4f}  val accuracy {val_acc:.4f}")
    out = runs.root(__file__, "nonlinearity", args.out)
    plots.decision_boundaries(panels, out / "boundaries.png", ncols=2,
                              title="A circular boundary: linear model vs one hidden ReLU layer")
    plots.compare_curves(run_paths, out / "curves.png", metrics=("train_loss", "val_loss"), logy=("train_loss", "val_loss"),
                         title="Same loss, optimizer and budget: only the hidden layer differs")
    return results


if __name__ == "__main__":
    cli.run(main)
