"""projects/mnist_architecture_search/analysis.py on constructed curves and summaries with known answers."""
import numpy as np
import pytest

from projects.mnist_architecture_search import analysis


def metrics(val_loss, val_acc, train_acc):
    n = len(val_loss)
    return {"epoch": np.arange(1, n + 1, dtype=float), "val_loss": np.array(val_loss, float),
            "val_acc": np.array(val_acc, float), "train_acc": np.array(train_acc, float),
            "train_loss": np.linspace(1.0, 0.1, n)}


def test_curve_stats_find_the_overfitting_onset_gap_and_late_gain():
    m = metrics(val_loss=[0.5, 0.3, 0.2, 0.25, 0.3, 0.3, 0.32, 0.4],
                val_acc=[0.90, 0.95, 0.96, 0.965, 0.97, 0.971, 0.972, 0.975],
                train_acc=[0.9, 0.96, 0.98, 0.99, 0.995, 0.998, 0.999, 1.0])
    s = analysis.curve_stats(m)
    assert s["best_val_loss_epoch"] == 3                      # lowest validation loss, 1-based epoch
    assert s["val_loss_rise"] == pytest.approx(0.4 / 0.2 - 1)  # doubled by the end
    assert s["final_gap"] == pytest.approx(2.5)                # 100% train vs 97.5% validation
    assert s["late_gain"] == pytest.approx(0.4)                # last quarter = 2 epochs: 97.1 -> 97.5


def test_seed_spread_is_the_between_seed_std_at_each_epoch():
    a = metrics([0.3, 0.2, 0.1], [0.90, 0.95, 0.97], [0.9, 0.95, 0.98])
    b = metrics([0.3, 0.2, 0.1], [0.80, 0.93, 0.97], [0.8, 0.93, 0.98])
    s = analysis.condition_curve_stats([a, b])
    assert s["val_acc_spread_max"] == pytest.approx(np.std([90, 80], ddof=1))
    assert s["val_acc_spread_max_epoch"] == 1 and s["val_acc_spread_final"] == pytest.approx(0.0)
    assert s["seeds"] == 2 and analysis.condition_curve_stats([]) is None


def summaries(accs, parameters):
    return [{"test_acc": a / 100, "parameters": parameters} for a in accs]


def test_goals_need_a_cnn_interval_wholly_above_every_mlp_interval():
    mlps = {"mlp 200k": summaries([98.1, 98.2, 98.3], 200_455), "mlp 10k": summaries([93.0, 93.5, 94.0], 10_337),
            "too big": summaries([99.5, 99.6, 99.7], 400_000)}          # over 200k: not compared
    cnns = {"cnn 10k": summaries([98.6, 98.62, 98.64], 9_824), "cnn 25k": summaries([98.0, 99.0, 99.9], 25_356),
            "cnn 50k": summaries([99.9, 99.9, 99.91], 50_000)}          # over 25k: not a candidate
    g = analysis.goals(mlps, cnns)
    assert g["best_mlp"]["condition"] == "mlp 200k" and g["best_mlp"]["mean"] == pytest.approx(98.2)
    assert not g["best_mlp"]["met"] and g["best_mlp"]["margin"] == pytest.approx(-0.1)
    verdict = g["cnn_beats_every_mlp"]
    assert verdict["mlps_compared"] == 2 and set(verdict["cnns"]) == {"cnn 10k", "cnn 25k"}
    assert verdict["cnns"]["cnn 10k"]["beats_every_mlp"]               # 98.58-98.66 above 97.95-98.45
    assert not verdict["cnns"]["cnn 25k"]["beats_every_mlp"]           # its wide interval overlaps
    assert verdict["met"]
    # an MLP whose interval reaches the CNN's takes the goal away
    mlps["mlp 200k, shifted"] = summaries([98.55, 98.6, 98.65], 200_455)
    assert not analysis.goals(mlps, cnns)["cnn_beats_every_mlp"]["met"]
    assert analysis.goals({"mlp": summaries([98.4], 50_000)}, {})["best_mlp"]["met"]
