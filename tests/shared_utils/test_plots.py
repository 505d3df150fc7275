"""Every figure has a title, labelled axes and a legend (or colour bar), and reads run files."""
import numpy as np
import pytest

from shared_utils import plots, runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def captured(monkeypatch):
    """Keep each figure for inspection while still writing the PNG."""
    figures = []
    real_save = plots.save

    def save(fig, path):
        figures.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(plots, "save", save)
    return figures


def assert_readable(fig, path, needs_legend=True):
    assert path.read_bytes()[:8] == PNG_MAGIC
    title = fig._suptitle.get_text() if fig._suptitle else ""
    data_axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert title or all(ax.get_title() for ax in data_axes)
    plotted = [ax for ax in data_axes if ax.lines or ax.patches or ax.collections]
    for ax in plotted:
        assert ax.get_xlabel() and ax.get_ylabel(), ax
        if needs_legend:
            assert ax.get_legend() is not None


def fake_run(tmp_path, name, acc):
    import argparse
    run = runs.RunDir(__file__, name, argparse.Namespace(out=tmp_path))
    for epoch in (1, 2, 3):
        run.log(epoch=epoch, train_loss=1 / epoch, train_acc=acc + 0.01 * epoch,
                val_loss=1.1 / epoch, val_acc=acc + 0.005 * epoch)
    return run.path


def test_learning_curves_from_metrics_csv(tmp_path, captured):
    path = plots.learning_curves(fake_run(tmp_path, "a", 0.8))
    assert path.name == "curves.png"
    fig = captured[0]
    assert_readable(fig, path)
    acc_ax = fig.axes[1]
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), [80.5, 81.0, 81.5])  # percent


def test_compare_curves_with_seed_bands(tmp_path, captured):
    runs_ = {"A": [fake_run(tmp_path, "a0", 0.8), fake_run(tmp_path, "a1", 0.82)],
             "B": fake_run(tmp_path, "b", 0.7)}
    path = plots.compare_curves(runs_, tmp_path / "cmp.png", title="A vs B")
    assert_readable(captured[0], path)
    labels = [t.get_text() for t in captured[0].axes[0].get_legend().get_texts()]
    assert labels == ["A (mean ± std, 2 seeds)", "B"]


def test_bars_lines_images_heatmaps(tmp_path, captured):
    p1 = plots.grouped_bars({"max": {"val": 98.0, "test": 97.5}, "avg": {"val": 97.0, "test": 96.9}},
                            tmp_path / "bars.png", title="Pooling", xlabel="pooling", ylabel="accuracy (%)",
                            errors={"max": {"val": 0.2, "test": 0.1}, "avg": {"val": 0.3, "test": 0.2}})
    assert_readable(captured[-1], p1)
    p2 = plots.line_plot({"relu": ([1, 2, 4], [0.5, 0.2, 0.1])}, tmp_path / "line.png", title="t",
                         xlabel="width (units)", ylabel="MSE", logx=True, logy=True, bands={"relu": [0.1] * 3})
    assert_readable(captured[-1], p2)
    images = np.random.default_rng(0).integers(0, 255, (5, 1, 8, 8)).astype(np.uint8)
    p3 = plots.image_grid(images, tmp_path / "grid.png", title="digits", titles=list("abcde"), ncols=3)
    fig = captured[-1]
    assert p3.read_bytes()[:8] == PNG_MAGIC and fig._suptitle.get_text() == "digits"
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes), "image grids carry a labelled colour bar"
    p4 = plots.heatmap_overlay(images[:, 0], np.abs(np.random.default_rng(1).normal(size=(5, 8, 8))),
                               tmp_path / "heat.png", title="saliency")
    assert p4.read_bytes()[:8] == PNG_MAGIC and any(ax.get_label() == "<colorbar>" for ax in captured[-1].axes)


@pytest.mark.parametrize("long", [
    "Muon recipe ablation: accuracy lost when one change is undone (paired with the same seed: mean and 95% CI "
    "over 3 seeds; 8 epochs of 50,000 images)",
    # narrower than the figure, but centred on axes that sit right of the figure's centre: it ran off the PNG
    "Muon recipe ablation: accuracy lost when one change is undone\n(paired with the same seed: mean and 95% CI "
    "over 1 seed(s); 8 epochs of 50,000 images)"])
def test_a_title_wider_than_its_room_is_wrapped_to_fit(tmp_path, captured, long):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    plots.grouped_bars({"a": {"drop": 1.0}, "b": {"drop": 0.5}}, tmp_path / "b.png", title=long, xlabel="x",
                       ylabel="y (points)")
    fig = captured[-1]
    title = fig.axes[0].title
    assert title.get_text().count("\n") > long.count("\n") and title.get_text().split() == long.split()
    box = title.get_window_extent(FigureCanvasAgg(fig).get_renderer())     # closed figure: a fresh canvas
    assert box.x0 >= 0 and box.x1 <= fig.get_figwidth() * fig.dpi          # inside the PNG, both sides
    # a title that fits is left as it is
    plots.grouped_bars({"a": {"drop": 1.0}}, tmp_path / "c.png", title="Short", xlabel="x", ylabel="y")
    assert captured[-1].axes[0].get_title() == "Short"
