"""Why does initialisation decide whether a network learns at all?

Part 1, the dying ReLU: a 64-128-10 ReLU net on real digit images (pixel intensities in
[0, 1], so every input is non-negative) with every first-layer weight negative. Every hidden
pre-activation is then negative, every ReLU outputs 0, and the gradients of both weight layers
are exactly 0.0 at every step: the loss cannot move below ln(10) ≈ 2.303 (the output bias
can only learn the near-uniform class frequencies). The same net with He initialisation trains.

Part 2, signal propagation: a 20-layer, 256-wide net under zero, small-normal (std 0.01),
Xavier and He initialisation, with ReLU and with tanh. For one batch of digits, the standard
deviation of each layer's activations (forward) and of the loss gradient at each layer's
input (backward) is plotted: too small an init makes both vanish geometrically with depth,
zero init makes every unit identical, and He (ReLU) / Xavier (tanh) keep them level.
"""
from __future__ import annotations

import numpy as np

from section2_optimization import layers
from section2_optimization.losses import softmax_cross_entropy
from section2_optimization.optim import SGD
from section2_optimization.trainer import evaluate, fit
from shared_utils import cli, data, plots, runs
from shared_utils.seed import seed_everything

INITS = {"zero": ("zeros", {}), "small normal (0.01)": ("normal", {"std": 0.01}),
         "Xavier": ("xavier_normal", {}), "He": ("he_normal", {})}


# ------------------------------------------------------------------ part 1
def dying_relu_net(seed: int, dead: bool) -> layers.Sequential:
    model = layers.mlp([64, 128, 10], activation="relu", seed=seed)
    if dead:
        first = model[0]
        first.weight.data[...] = -np.abs(first.weight.data)  # negative weights x non-negative inputs
    return model


def part1(args, ds, root) -> dict:
    x_train, y_train = ds.train.x.reshape(len(ds.train), -1).astype(np.float32) / 255.0, ds.train.y
    x_val, y_val = ds.val.x.reshape(len(ds.val), -1).astype(np.float32) / 255.0, ds.val.y
    results, paths, grad_series = {}, {}, {}
    for label, dead in (("negative init (dead ReLUs)", True), ("He init", False)):
        run = runs.RunDir(__file__, f"initialization/dying_relu/{'dead' if dead else 'he'}", args)
        model = dying_relu_net(args.seed, dead)
        first, last = model[0], model[2]
        grad_norms, alive = [], []

        def record(step, loss, first=first, last=last, model=model):
            grad_norms.append(max(float(np.abs(first.weight.grad).max()), float(np.abs(last.weight.grad).max())))
            alive.append(float(model[1]._mask.any(axis=0).mean()))  # share of hidden units that fired

        fit(model, softmax_cross_entropy, SGD(model.parameters(), lr=args.lr), (x_train, y_train), (x_val, y_val),
            epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, run=run, quiet=args.quiet,
            on_batch=record)
        val_loss, val_acc = evaluate(model, softmax_cross_entropy, x_val, y_val)
        results[label] = run.summary(max_abs_weight_grad=max(grad_norms), share_units_alive=float(np.mean(alive)),
                                     val_loss_end=val_loss, val_acc_end=val_acc)
        paths[label] = run.path
        grad_series[label] = (np.arange(1, len(grad_norms) + 1), grad_norms)
        print(f"{label:28s} max |dL/dW| over training {max(grad_norms):.3g}, hidden units firing "
              f"{np.mean(alive):.0%}, val loss {val_loss:.4f}, val acc {val_acc:.3f}")
    plots.compare_curves(paths, root / "dying_relu_curves.png", metrics=("train_loss", "val_acc"),
                         title="Dying ReLU: negative weights on non-negative inputs never learn")
    plots.line_plot(grad_series, root / "dying_relu_gradients.png", markers=False,
                    title="Largest weight gradient per step (exactly 0 for the dead net)",
                    xlabel="training step", ylabel="max |dL/dW| over both weight layers")
    return results


# ------------------------------------------------------------------ part 2
def propagation_stats(activation: str, init: str, x: np.ndarray, y: np.ndarray, depth: int, width: int,
                      seed: int) -> tuple[list[float], list[float]]:
    name, kwargs = INITS[init]
    rng = np.random.default_rng(seed)
    act = layers.ACTIVATIONS[activation]
    stack: list[layers.Module] = []
    sizes = [x.shape[1]] + [width] * depth
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        stack += [layers.Linear(n_in, n_out, rng=rng, init=name, **kwargs), act()]
    stack.append(layers.Linear(width, 10, rng=rng, init=name, **kwargs))
    model = layers.Sequential(*stack)
    h, forward_std = x, []
    for layer in model:
        h = layer.forward(h)
        if isinstance(layer, act):
            forward_std.append(float(h.std()))
    _, grad = softmax_cross_entropy(h, y)
    backward_std = []
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
        if isinstance(layer, layers.Linear):
            backward_std.append(float(grad.std()))
    return forward_std, backward_std[::-1]  # backward visited layers last-first


def part2(args, ds, root) -> dict:
    x, y = ds.arrays("train", flatten=True)
    x, y = x[:512], y[:512]
    depth, width = args.depth, args.width
    stats_out, panels = {}, []
    for activation in ("relu", "tanh"):
        forward, backward = {}, {}
        for init in INITS:
            f, b = propagation_stats(activation, init, x, y, depth, width, args.seed)
            forward[init] = (np.arange(1, depth + 1), f)
            backward[init] = (np.arange(1, len(b) + 1), b)
            stats_out[f"{activation}/{init}"] = {"activation_std": f, "input_grad_std": b}
            print(f"{activation:4s} {init:20s} activation std layer 1 {f[0]:.2e} -> layer {depth} {f[-1]:.2e}; "
                  f"gradient std layer {len(b)} {b[-1]:.2e} -> layer 1 {b[0]:.2e}")
        panels.append({"series": forward, "title": f"{activation}: forward activations", "xlabel": "hidden layer",
                       "ylabel": "std of activations (symlog)", "symlogy": True, "linthresh": 1e-10})
        panels.append({"series": backward, "title": f"{activation}: backward gradients", "xlabel": "linear layer",
                       "ylabel": "std of dL/d(layer input) (symlog)", "symlogy": True, "linthresh": 1e-12})
    plots.line_panels(panels, root / "propagation.png", ncols=2,
                      title=f"Signal through a {depth}-layer, {width}-wide net at initialisation (digits batch of 512)")
    return stats_out


def main(argv=None):
    p = cli.parser(__doc__, epochs=20, batch_size=32, lr=0.1, quick={"epochs": 2})
    p.add_argument("--depth", type=cli.depth, default=20)
    p.add_argument("--width", type=cli.width, default=256)
    args = cli.parse(p, argv)
    seed_everything(args.seed)
    ds = data.digits(val_size=300, seed=args.seed)
    root = runs.root(__file__, "initialization", args.out)
    dying = part1(args, ds, root)
    propagation = part2(args, ds, root)
    runs.atomic_write_json(root / "propagation.json", propagation)
    return dying, propagation


if __name__ == "__main__":
    cli.run(main)
