"""How wide must one hidden layer be? Universal approximation measured on smooth, kinked and
discontinuous targets.

One hidden ReLU layer of width 1, 2, 4, ... 128 is fitted (Adam, same budget for every width)
to sin(3x), |x| and a step, noise-free, and scored by mean squared error on a dense grid.
A ReLU layer is a piecewise-linear function with one kink per unit: |x| needs only two units,
sin(3x)'s error falls steadily with width, and the step's error levels off, since a continuous
network can only approximate the jump with a steep ramp between the training points.
--seeds averages over initialisations and data draws.
"""
from __future__ import annotations

import numpy as np

from section2_optimization import layers
from section2_optimization.losses import mse
from section2_optimization.optim import Adam, CosineAnnealingLR
from section2_optimization.trainer import fit, predict
from shared_utils import cli, data, plots, runs, stats
from shared_utils.data import REGRESSION_FORMULAS, REGRESSION_TARGETS
from shared_utils.study import Study, start


# ---- hyper-parameters; --epochs, --batch-size, --lr and --points override them
HP = {"epochs": 500, "batch_size": 32, "lr": 0.01, "points": 256, "target": "sine", "width": 1}
GRID = np.linspace(-2, 2, 1000, dtype=np.float32)[:, None]


def trial(config: dict) -> dict:
    """One width on one target and seed: fit the noise-free points, score the error on a dense grid."""
    run = start(config).run
    seed, width = config["seed"], config["width"]
    points = data.regression_1d(config["points"], target=config["target"], noise=0.0, seed=seed)
    model = layers.mlp([1, width, 1], activation="relu", seed=seed)
    # unit j bends at x = -b_j / w_j; with zero biases every kink would start at x = 0,
    # so spread them uniformly over the input range instead
    first = model[0]
    kinks = np.random.default_rng(seed).uniform(-2, 2, width).astype(np.float32)
    first.bias.data[:] = -first.weight.data[0] * kinks
    optimizer = Adam(model.parameters(), lr=config["lr"])
    steps = config["epochs"] * -(-config["points"] // config["batch_size"])
    # the decay lets the last steps settle into the minimum instead of rattling around it
    fit(model, mse, optimizer, (points.x, points.y), epochs=config["epochs"], batch_size=config["batch_size"],
        seed=seed, accuracy=False, checkpoint=None, quiet=True,
        scheduler=CosineAnnealingLR(optimizer, T_max=steps), schedule_per="batch")
    prediction = predict(model, GRID)
    truth = REGRESSION_TARGETS[config["target"]](GRID).astype(np.float32)
    run.save_checkpoint({"prediction": prediction, "x": points.x, "y": points.y}, "fit.npz")
    return run.summary(grid_mse=float(((prediction - truth) ** 2).mean()))


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 20, "widths": [1, 8, 64]})
    p.add_argument("--widths", type=cli.width, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    p.add_argument("--targets", nargs="+", choices=sorted(REGRESSION_TARGETS), default=["sine", "abs", "step"])
    p.add_argument("--points", type=cli.points, default=HP["points"])
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    conditions = {f"{t} width {w}": {"target": t, "width": w} for t in args.targets for w in args.widths}
    study = Study("universal_approximation", trial, conditions, args.seeds, runs.root(__file__, out=args.out),
                  base=cli.hyperparameters(HP, args), resume=args.resume)
    result = study.run_or_load(args)
    result.raise_for_failures()
    out = study.path
    mse_of = result.values("grid_mse")
    errors = {t: {w: mse_of[f"{t} width {w}"] for w in args.widths} for t in args.targets}
    panels = []
    shown = (args.widths[0], args.widths[len(args.widths) // 2], args.widths[-1])
    for target in args.targets:
        fits = {}
        for width in shown:
            saved = runs.load_npz(result.run_paths()[f"{target} width {width}"][0] / "fit.npz")
            fits[f"width {width}"] = saved["prediction"]
        panels.append({"title": f"y = {REGRESSION_FORMULAS[target]}", "x": saved["x"], "y": saved["y"],
                       "grid": GRID, "truth": REGRESSION_TARGETS[target](GRID).astype(np.float32), "fits": fits})
        if not args.quiet:
            for width in args.widths:
                print(f"{target:5s} width {width:4d}: grid MSE {stats.summarize(errors[target][width])}")
    series = {REGRESSION_FORMULAS[t]: (args.widths, [stats.summarize(errors[t][w]).mean for w in args.widths])
              for t in args.targets}
    plots.line_plot(series, out / "error_vs_width.png", logx=True, logy=True,
                    title=f"One hidden ReLU layer: error vs width (mean of {len(args.seeds)} seeds)",
                    xlabel="hidden units (log scale)", ylabel="MSE to the true function on a grid (log scale)")
    plots.regression_fits(panels, out / "fits.png", title="Fits as the hidden layer widens (seed %d)" % args.seeds[0])
    header = ["target"] + [f"width {w}" for w in args.widths]
    rows = [[REGRESSION_FORMULAS[t]] + [f"{stats.summarize(errors[t][w]).mean:.2e}" for w in args.widths]
            for t in args.targets]
    stats.write_table(header, rows, out / "errors", caption="Grid MSE (mean over seeds) by hidden width")
    grid_mse = {t: {str(w): stats.summarize(v).mean for w, v in per.items()} for t, per in errors.items()}
    runs.atomic_write_json(out / "grid_mse.json", grid_mse)
    print("\n".join(" | ".join(r) for r in [header] + rows))
    return errors


if __name__ == "__main__":
    cli.run(main)
