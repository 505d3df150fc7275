"""Which optimizer trains a small network fastest, and how do they move on hard 2-D surfaces?

Part 1: on moons, circles and 3-arm spirals, one MLP (2-64-64-K, ReLU) starts from the same
initial weights and sees the same mini-batches for every optimizer: SGD, SGD with momentum,
Nesterov, RMSprop, Adam and AdamW, each at its customary learning rate (OPTIMIZERS below).
Loss curves are overlaid (mean ± std with --seeds), final accuracies tabulated, and every
decision boundary drawn.
Part 2: the same update rules walk the Rosenbrock valley, the Beale function and a saddle
from a fixed start (the saddle starts a hair off its ridge: how fast does each escape?);
their trajectories are drawn over contour plots.
"""
from __future__ import annotations

import numpy as np

from section2_optimization import layers, optim
from section2_optimization.layers import Parameter
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.trainer import evaluate, fit, predict
from section2_optimization import figures
from shared_utils import cli, data, plots, runs
from shared_utils.study import Study, start

# name -> (class, keyword arguments); learning rates are each method's customary default scale
OPTIMIZERS = {
    "SGD": (optim.SGD, {"lr": 0.1}),
    "Momentum": (optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    "Nesterov": (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "RMSprop": (optim.RMSprop, {"lr": 0.003}),
    "Adam": (optim.Adam, {"lr": 0.003}),
    "AdamW": (optim.AdamW, {"lr": 0.003, "weight_decay": 0.01}),
}
DATASETS = {"moons": lambda seed: data.moons(600, noise=0.2, seed=seed),
            "circles": lambda seed: data.circles(600, noise=0.1, factor=0.5, seed=seed),
            "spirals": lambda seed: data.spirals(600, classes=3, noise=0.2, seed=seed)}


# ------------------------------------------------------------------ 2-D test functions
def rosenbrock(p):
    x, y = p
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2, np.array([-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)])


def beale(p):
    x, y = p
    t1, t2, t3 = 1.5 - x + x * y, 2.25 - x + x * y ** 2, 2.625 - x + x * y ** 3
    f = t1 ** 2 + t2 ** 2 + t3 ** 2
    gx = 2 * t1 * (y - 1) + 2 * t2 * (y ** 2 - 1) + 2 * t3 * (y ** 3 - 1)
    gy = 2 * t1 * x + 2 * t2 * 2 * x * y + 2 * t3 * 3 * x * y ** 2
    return f, np.array([gx, gy])


def saddle(p):
    """x² - y²/2 + y⁴/4: a saddle at the origin between minima at (0, ±1), bounded below."""
    x, y = p
    return x ** 2 - y ** 2 / 2 + y ** 4 / 4, np.array([2 * x, y ** 3 - y])


# function -> (f, start, minimum or None, box, lr for the SGD family, lr for the adaptive family, steps)
SURFACES = {
    "rosenbrock": (rosenbrock, (-1.5, 2.0), (1.0, 1.0), ((-2, 2), (-1, 3)), 1e-4, 0.05, 1000),
    "beale": (beale, (1.0, 1.5), (3.0, 0.5), ((-1, 4), (-1.5, 2)), 1e-3, 0.05, 1000),
    "saddle": (saddle, (-1.0, 1e-3), (0.0, 1.0), ((-1.5, 1.5), (-1.6, 1.6)), 1e-2, 0.01, 300),
}


def trajectory(name: str, surface: str) -> np.ndarray:
    f, start, _, _, lr_sgd, lr_adaptive, steps = SURFACES[surface]
    cls, kwargs = OPTIMIZERS[name]
    kwargs = dict(kwargs, lr=lr_sgd if cls is optim.SGD else lr_adaptive)
    point = Parameter(np.array(start, dtype=np.float64))
    opt = cls([point], **kwargs)
    path = [point.data.copy()]
    for _ in range(steps):
        _, point.grad = f(point.data)
        opt.step()
        if not np.isfinite(point.data).all() or np.abs(point.data).max() > 1e6:
            break  # diverged: keep the path up to here
        path.append(point.data.copy())
    return np.array(path)


def draw_surfaces(names, out_dir) -> dict:
    finals = {}
    for surface, (f, origin, minimum, box, *_rest) in SURFACES.items():
        xs, ys = np.linspace(*box[0], 300), np.linspace(*box[1], 300)
        xx, yy = np.meshgrid(xs, ys)
        zz = f((xx, yy))[0]
        paths = {name: trajectory(name, surface) for name in names}
        finals[surface] = {name: {"point": path[-1].tolist(), "value": float(f(path[-1])[0]), "steps": len(path) - 1}
                           for name, path in paths.items()}
        figures.contour_paths(xx, yy, zz, paths, out_dir / f"trajectory_{surface}.png",
                            minimum=minimum, log_levels=surface != "saddle",
                            title=f"{surface.capitalize()}: {SURFACES[surface][6]} steps from {origin}")
    return finals


# ------------------------------------------------------------------ part 1
# ---- hyper-parameters; --epochs and --batch-size override them (each optimizer keeps its own lr above)
HP = {"epochs": 60, "batch_size": 32, "dataset": "moons", "optimizer": "SGD"}


def trial(config: dict) -> dict:
    """One optimizer on one dataset and seed: the same initial weights and batches for every optimizer."""
    seed, name = config["seed"], config["optimizer"]
    t = start(config)
    points = DATASETS[config["dataset"]](seed)
    cut = int(0.8 * len(points))
    train, val = (points.x[:cut], points.y[:cut]), (points.x[cut:], points.y[cut:])
    k = int(points.y.max()) + 1
    cls, kwargs = OPTIMIZERS[name]
    run = t.run
    run.update_config(optimizer_kwargs=kwargs)
    model = layers.mlp([2, 64, 64, k], activation="relu", seed=seed)   # same init for every optimizer
    fit(model, softmax_cross_entropy, cls(model.parameters(), **kwargs), train, val, epochs=config["epochs"],
        batch_size=config["batch_size"], seed=seed, run=run, quiet=config["quiet"],
        desc=f"{config['dataset']} {name}")
    val_loss, val_acc = evaluate(model, softmax_cross_entropy, *val)
    xx, yy = np.meshgrid(np.linspace(points.x[:, 0].min() - 0.5, points.x[:, 0].max() + 0.5, 150),
                         np.linspace(points.x[:, 1].min() - 0.5, points.x[:, 1].max() + 0.5, 150))
    zz = predict(model, np.c_[xx.ravel(), yy.ravel()].astype(np.float32)).argmax(1).reshape(xx.shape)
    run.save_checkpoint({"xx": xx, "yy": yy, "zz": zz, "x": points.x, "y": points.y}, "boundary.npz")
    return run.summary(final_val_acc_model=val_acc)


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], seeds=True, quick={"epochs": 5})
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    p.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), default=list(OPTIMIZERS))
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    root = runs.root(__file__, "optimizer_compare", args.out)
    summary_rows = {}
    for dataset in args.datasets:
        study = Study(dataset, trial, {name: {"optimizer": name} for name in args.optimizers}, args.seeds, root,
                      base={**cli.hyperparameters(HP, args), "dataset": dataset, "quiet": args.quiet},
                      resume=args.resume)
        result = study.run_or_load(args)
        table = result.report({"final_val_acc_model": "final val acc (%)", "final_train_loss": "final train loss"},
                              scale={"final_val_acc_model": 100}, digits=3,
                              caption=f"{dataset}: MLP 2-64-64, {args.epochs} epochs, batch {args.batch_size}, "
                                      f"seeds {args.seeds}: mean ± std [95% CI]",
                              bar_ylabel="final validation accuracy (%)", bar_xlabel="optimizer", logy=("train_loss",),
                              curve_title=f"{dataset}: same network, initial weights and batches")
        panels = []
        for name, paths in result.run_paths().items():
            b = runs.load_npz(paths[0] / "boundary.npz")
            acc = runs.read_summary(paths[0])["final_val_acc_model"]
            panels.append({"title": f"{name} (val acc {acc:.1%})", "xx": b["xx"], "yy": b["yy"], "zz": b["zz"],
                           "x": b["x"], "y": b["y"]})
        if panels:
            plots.decision_boundaries(panels, study.path / "boundaries.png",
                                      title=f"{dataset}: decision boundary after {args.epochs} epochs (seed {args.seeds[0]})")
        summary_rows[dataset] = table
        print(f"\n{dataset}\n{table}")
        result.raise_for_failures()
    finals = draw_surfaces(args.optimizers, root)
    for surface, per in finals.items():
        print(f"{surface}: " + ", ".join(f"{n} f={v['value']:.3g}" for n, v in per.items()))
    runs.atomic_write_json(root / "trajectories.json", finals)
    return summary_rows, finals


if __name__ == "__main__":
    cli.run(main)
