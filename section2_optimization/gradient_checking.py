"""Are the backward passes right? Every layer, loss and a whole network against finite differences.

Each check compares the analytic gradient with centred finite differences in float64 and
reports the relative error per tensor (correct code: about 1e-9 or smaller; a wrong backward:
order 1). Prints a table, plots the errors per layer on a log scale with the pass threshold,
and exits with status 1 if any check fails. --plant-bug swaps in a Tanh whose backward forgets
the square in 1 - tanh², to show the check catching it.
"""
from __future__ import annotations

import sys

import numpy as np

from section2_optimization import finite_differences, layers, losses
from section2_optimization import figures
from shared_utils import cli, runs, stats
from shared_utils.seed import seed_everything


class BuggyTanh(layers.Tanh):
    """A planted bug: the derivative of tanh is 1 - tanh², not 1 - tanh."""

    def backward(self, grad_out):
        return grad_out * (1 - self._out)


def all_checks(rng: np.random.Generator, plant_bug: bool) -> list[finite_differences.CheckResult]:
    x = rng.standard_normal((6, 5))
    x[np.abs(x) < 1e-3] = 0.1  # keep finite differences off ReLU's kink
    f64 = np.float64
    results: list[finite_differences.CheckResult] = []
    single = {
        "Linear": layers.Linear(5, 4, rng=rng, dtype=f64),
        "ReLU": layers.ReLU(),
        "LeakyReLU": layers.LeakyReLU(0.1),
        "Sigmoid": layers.Sigmoid(),
        "Tanh": BuggyTanh() if plant_bug else layers.Tanh(),
        "GELU": layers.GELU(),
        "BatchNorm1d": layers.BatchNorm1d(5, dtype=f64),
    }
    for name, layer in single.items():
        results += finite_differences.check_module(layer, x, name=name + (" (planted bug)" if plant_bug and name == "Tanh" else ""))
    bn_eval = layers.BatchNorm1d(5, dtype=f64)
    bn_eval.running_mean[:], bn_eval.running_var[:] = rng.standard_normal(5), rng.uniform(0.5, 2, 5)
    results += finite_differences.check_module(bn_eval, x, train=False, name="BatchNorm1d (eval)")
    dropout = layers.Dropout(0.3, seed=1)
    results += finite_differences.check_module(dropout, x, name="Dropout", before_forward=lambda: dropout.reseed(1))
    labels = rng.integers(0, 4, 6)
    logits = rng.standard_normal((6, 4))
    results.append(finite_differences.check_loss(losses.softmax_cross_entropy, logits, labels, name="CrossEntropy"))
    results.append(finite_differences.check_loss(losses.softmax_cross_entropy, logits, labels, label_smoothing=0.1,
                                        name="CrossEntropy (smoothing 0.1)"))
    results.append(finite_differences.check_loss(losses.bce_with_logits, rng.standard_normal((6, 1)) * 3,
                                        rng.integers(0, 2, (6, 1)), name="BCEWithLogits"))
    results.append(finite_differences.check_loss(losses.mse, rng.standard_normal((6, 2)), rng.standard_normal((6, 2)),
                                        name="MSE"))
    results.append(finite_differences.check_loss(losses.sigmoid_mse, rng.standard_normal((6, 1)) * 2,
                                        rng.integers(0, 2, (6, 1)), name="MSE on sigmoid"))
    net = layers.mlp([5, 8, 8, 4], activation="tanh", batchnorm=True, dropout=0.2, seed=0, dtype=f64)
    if plant_bug:
        net.layers = [BuggyTanh() if isinstance(l, layers.Tanh) else l for l in net.layers]
    drops = [l for l in net if isinstance(l, layers.Dropout)]
    results += finite_differences.check_network(net, losses.softmax_cross_entropy, x, labels, name="Network 5-8-8-4",
                                       before_forward=lambda: [d.reseed(i) for i, d in enumerate(drops)])
    return results


def main(argv=None):
    p = cli.parser(__doc__, epochs=1, quick={})
    p.add_argument("--plant-bug", action="store_true", help="use a Tanh with a wrong backward")
    args = cli.parse(p, argv)
    rng = seed_everything(args.seed)
    results = all_checks(rng, args.plant_bug)
    run = runs.RunDir(__file__, "gradient_checking_bug" if args.plant_bug else "gradient_checking", args)
    header = ["check", "tensor", "entries", "relative error", "verdict"]
    rows = []
    for r in results:
        layer, tensor = r.name.split(": ", 1) if ": " in r.name else (r.name, "logits")
        rows.append([layer, tensor, r.size, f"{r.rel_error:.2e}", "ok" if r.passed else "FAIL"])
    stats.write_table(header, rows, run / "errors",
                      caption=f"Gradient check, float64 centred differences, threshold {finite_differences.THRESHOLD:g}")
    width = max(len(r[0]) + len(r[1]) for r in rows) + 3
    for r in rows:
        print(f"{r[0] + ': ' + r[1]:{width}s} {r[3]:>9s}  {r[4]}")
    worst = {}
    for r in results:
        layer = r.name.split(": ")[0]
        worst[layer] = max(worst.get(layer, 0.0), r.rel_error)
    plot_values = {k: max(v, 1e-16) for k, v in worst.items()}
    figures.error_bars_log(plot_values, run / "errors.png", threshold=finite_differences.THRESHOLD,
                         title="Gradient check: analytic vs numeric gradients (float64)",
                         xlabel="layer or loss checked", ylabel="worst relative error over its tensors (log scale)")
    failed = [r.name for r in results if not r.passed]
    run.summary(checks=len(results), failed=failed, max_rel_error=max(r.rel_error for r in results),
                worst_per_check=worst)
    print(f"{len(results) - len(failed)}/{len(results)} gradient checks passed -> {run.path}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)
    return results


if __name__ == "__main__":
    cli.run(main)
