"""What can one linear neuron do, and why does stacking linear layers add nothing?

Part 1: a single neuron y = w·x + b is linear regression. On data made from known weights,
the closed-form least-squares solution and plain gradient descent on the mean squared error
recover the same weights; the figure shows gradient descent converging to them.
Part 2: three linear layers with no activation in between compose to one matrix
W = W1 W2 W3. The composed map is computed and checked to give the same outputs, and a
deep linear net trained on the same data fits no better than the closed form.
"""
from __future__ import annotations

import numpy as np

from section2_optimization import layers
from section2_optimization.losses import mse
from section2_optimization.optim import SGD
from section2_optimization.trainer import fit, predict
from shared_utils import cli, plots, runs
from shared_utils.seed import seed_everything

TRUE_W = np.array([2.0, -3.0, 0.5], dtype=np.float64)
TRUE_B = 1.0


def make_data(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(TRUE_W)))
    return x, x @ TRUE_W + TRUE_B + rng.normal(0, noise, n)


def closed_form(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with a bias column: argmin ||[x 1] theta - y||^2 (what the normal equations solve)."""
    theta, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    return theta


def gradient_descent(x: np.ndarray, y: np.ndarray, lr: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch gradient descent on the MSE; returns final (w, b) and the path of [w, b] per step."""
    w, b = np.zeros(x.shape[1]), 0.0
    path = [np.r_[w, b]]
    n = len(y)
    for _ in range(steps):
        residual = x @ w + b - y                     # (n,)
        w = w - lr * (2.0 / n) * (x.T @ residual)    # d/dw mean(residual^2)
        b = b - lr * (2.0 / n) * residual.sum()
        path.append(np.r_[w, b])
    return np.r_[w, b], np.array(path)


def main(argv=None):
    p = cli.parser(__doc__, epochs=200, batch_size=32, lr=0.05, quick={"epochs": 20})
    p.add_argument("--points", type=cli.points, default=500)
    p.add_argument("--noise", type=cli.nonneg_float, default=0.3, help="std of the noise on y")
    p.add_argument("--gd-steps", type=cli.positive_int, default=200)
    args = cli.parse(p, argv)
    seed_everything(args.seed)
    run = runs.RunDir(__file__, "linear_neuron", args)
    x, y = make_data(args.points, args.noise, args.seed)

    # -- part 1: closed form vs gradient descent
    theta_closed = closed_form(x, y)
    theta_gd, path = gradient_descent(x, y, args.lr, args.gd_steps)
    truth = np.r_[TRUE_W, TRUE_B]
    steps = np.arange(len(path))
    plots.line_plot({"|| theta_GD - theta_true ||": (steps, np.linalg.norm(path - truth, axis=1)),
                     "|| theta_GD - theta_closed-form ||": (steps, np.linalg.norm(path - theta_closed, axis=1))},
                    run / "gd_convergence.png", logy=True, markers=False,
                    title=f"Gradient descent (lr {args.lr}) reaches the least-squares solution",
                    xlabel="gradient-descent step", ylabel="distance in weight space (log scale)")
    closed_mse = float(np.mean((np.c_[x, np.ones(len(x))] @ theta_closed - y) ** 2))

    # -- part 2: a deep linear net is one linear map
    x32, y32 = x.astype(np.float32), y[:, None].astype(np.float32)
    deep = layers.Sequential(layers.Linear(3, 16, rng=np.random.default_rng(args.seed), init="xavier_normal"),
                             layers.Linear(16, 16, rng=np.random.default_rng(args.seed + 1), init="xavier_normal"),
                             layers.Linear(16, 1, rng=np.random.default_rng(args.seed + 2), init="xavier_normal"))
    history = fit(deep, mse, SGD(deep.parameters(), lr=args.lr / 5), (x32, y32), epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, run=run, accuracy=False, quiet=args.quiet)
    deep.load_state_dict(history.best_state)
    # y = ((x W1 + b1) W2 + b2) W3 + b3 = x (W1 W2 W3) + (b1 W2 W3 + b2 W3 + b3)
    w1, w2, w3 = (layer.weight.data.astype(np.float64) for layer in deep)
    b1, b2, b3 = (layer.bias.data.astype(np.float64) for layer in deep)
    composed_w = w1 @ w2 @ w3
    composed_b = b1 @ w2 @ w3 + b2 @ w3 + b3
    composed_out = x @ composed_w + composed_b
    max_gap = float(np.abs(composed_out - predict(deep, x32).astype(np.float64)).max())
    deep_mse = float(np.mean((composed_out[:, 0] - y) ** 2))
    plots.learning_curves(run.path, title="Three stacked linear layers trained with SGD",
                          loss_label="MSE (y units²)", logy=True)
    summary = run.summary(
        true_weights=truth, closed_form_weights=theta_closed, gradient_descent_weights=theta_gd,
        gd_distance_to_closed_form=float(np.linalg.norm(theta_gd - theta_closed)),
        closed_form_mse=closed_mse, deep_linear_mse=deep_mse,
        deep_linear_composed_weights=np.r_[composed_w[:, 0], composed_b],
        composed_map_max_output_gap=max_gap, deep_linear_parameters=deep.num_parameters())
    print(f"true [w, b]         {np.round(truth, 4)}")
    print(f"closed form         {np.round(theta_closed, 4)}  (MSE {closed_mse:.4f})")
    print(f"gradient descent    {np.round(theta_gd, 4)}  after {args.gd_steps} steps")
    print(f"3 linear layers     {np.round(summary['deep_linear_composed_weights'], 4)}  (MSE {deep_mse:.4f}, "
          f"{deep.num_parameters()} parameters, composed map matches to {max_gap:.1e})")
    return summary


if __name__ == "__main__":
    cli.run(main)
