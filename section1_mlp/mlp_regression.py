"""Can the hand-written MLP fit a noisy curve? 1-D regression with mean squared error.

A 1-64-64-1 tanh MLP (section 1's, plain SGD) fits y = sin(3x) + noise on 80% of the points
and is scored on the held-out 20%. The figure shows the fit against the true function and
the residuals: noise without structure means the curve was captured, not the noise.
"""
from __future__ import annotations

import numpy as np

from section1_mlp.mlp import MLP, PlainSGD
from section2_optimization.losses import mse
from section2_optimization.trainer import evaluate, fit, predict
from shared_utils import cli, data, plots, runs
from shared_utils.data import REGRESSION_FORMULAS, REGRESSION_TARGETS
from shared_utils.seed import seed_everything


def main(argv=None):
    p = cli.parser(__doc__, epochs=1000, batch_size=16, lr=0.05, quick={"epochs": 50})
    p.add_argument("--target", choices=sorted(REGRESSION_TARGETS), default="sine")
    p.add_argument("--noise", type=cli.nonneg_float, default=0.1, help="std of the Gaussian noise on y")
    p.add_argument("--points", type=cli.points, default=400)
    args = cli.parse(p, argv)
    seed_everything(args.seed)
    points = data.regression_1d(args.points, target=args.target, noise=args.noise, seed=args.seed)
    order = np.random.default_rng(args.seed).permutation(len(points))
    cut = int(0.8 * len(points))
    train, val = points.take(np.sort(order[:cut])), points.take(np.sort(order[cut:]))
    run = runs.RunDir(__file__, f"regression/{args.target}", args)
    model = MLP([1, 64, 64, 1], activation="tanh", seed=args.seed)
    fit(model, mse, PlainSGD(model, args.lr), (train.x, train.y), (val.x, val.y), epochs=args.epochs,
        batch_size=args.batch_size, seed=args.seed, run=run, accuracy=False, quiet=args.quiet)
    best = MLP.from_state_dict(runs.load_npz(run / "best.npz"))
    val_mse, _ = evaluate(best, mse, val.x, val.y, accuracy=False)
    grid = np.linspace(points.x.min(), points.x.max(), 400, dtype=np.float32)[:, None]
    truth = REGRESSION_TARGETS[args.target](grid)
    grid_mse = float(((predict(best, grid) - truth) ** 2).mean())
    plots.regression_fits([{"title": f"y = {REGRESSION_FORMULAS[args.target]} + N(0, {args.noise}²)", "x": points.x, "y": points.y,
                            "grid": grid, "truth": truth, "fits": {"MLP 1-64-64-1 (tanh)": predict(best, grid)}}],
                          run / "fit.png", title="1-D regression with the hand-written MLP", residuals=True)
    plots.learning_curves(run.path, title="Mean squared error per epoch", loss_label="MSE (y units²)", logy=True)
    summary = run.summary(val_mse=val_mse, mse_to_true_function=grid_mse, noise_variance=args.noise ** 2)
    print(f"validation MSE {val_mse:.4f} (noise variance {args.noise ** 2:.4f}); "
          f"MSE to the true function {grid_mse:.4f} -> {run.path}")
    return summary


if __name__ == "__main__":
    cli.run(main)
