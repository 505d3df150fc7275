"""What has the NumPy CNN learned to look for? Its first-layer filters and every conv layer's
feature maps for a few test digits.

Reads a checkpoint from train_mnist_numpy.py and writes section3_cnn/runs/vis/: filters.png
(the first layer's kernels, red positive and blue negative) and feature_maps_conv<k>.png (each
conv layer's ReLU outputs, one row per digit).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from section2_optimization import layers
from section3_cnn.model import conv_layers, load_cnn
from shared_utils import cli, data, plots, runs

DEFAULT_CKPT = Path(__file__).resolve().parent / "runs" / "mnist_numpy" / "best.npz"


def feature_maps(model: layers.Sequential, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The ReLU of each convolution's output at full resolution, (N, H, W, C), for input (N, 1, 28, 28).
    (With max pooling the network pools before its ReLU, so the maps are rectified here, not read off a layer.)"""
    maps, h = [], x
    convs = {i for i, _ in conv_layers(model)}
    for i, layer in enumerate(model):
        h = layer.forward(h, train=False)
        if i in convs:
            maps.append((f"conv{len(maps) + 1}", np.maximum(h, 0)))
    return maps


def main(argv=None):
    p = cli.parser(__doc__, trains=False)
    p.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT, help="checkpoint written by train_mnist_numpy.py")
    p.add_argument("--digits", type=cli.positive_int, default=4, help="test digits to show")
    args = cli.parse(p, argv)
    model = load_cnn(args.ckpt)
    ds = data.mnist(args.data_dir, quiet=args.quiet)
    run = runs.RunDir(__file__, "vis", args, checkpoint=str(args.ckpt))
    first = conv_layers(model)[0][1]
    kernels = first.weight.data[:, :, 0, :].transpose(2, 0, 1)           # (F, kh, kw) of the single input channel
    plots.image_grid(kernels, run / "filters.png", titles=[f"filter {i}" for i in range(len(kernels))], ncols=8,
                     cmap="RdBu_r", symmetric=True, colorbar_label="weight",
                     title=f"First-layer {first.kh}x{first.kw} filters of the NumPy CNN")
    x, y = ds.arrays("test")
    x, y = x[:args.digits], y[:args.digits]
    written = []
    for name, fmap in feature_maps(model, x):
        channels = fmap.shape[-1]
        panels = [fmap[i, :, :, c] for i in range(len(x)) for c in range(channels)]
        titles = [f"digit {y[i]}, ch {c}" for i in range(len(x)) for c in range(channels)]
        path = plots.image_grid(panels, run / f"feature_maps_{name}.png", titles=titles, ncols=channels,
                                cmap="magma", colorbar_label="activation (after ReLU)",
                                title=f"{name} feature maps ({fmap.shape[1]}x{fmap.shape[2]}, {channels} channels), "
                                      "one row per test digit")
        written.append(path.name)
    run.summary(filters=int(len(kernels)), feature_map_files=written, digits=[int(v) for v in y])
    print(f"wrote filters.png and {', '.join(written)} -> {run.path}")
    return written


if __name__ == "__main__":
    cli.run(main)
