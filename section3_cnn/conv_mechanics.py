"""What does a convolution actually compute? Convolution and pooling taken apart on real digits.

1. A naive convolution written as explicit loops over images, filters and output pixels gives
   the same numbers as the im2col implementation (max |difference| reported).
2. Hand-made Sobel kernels, with no training at all, find vertical and horizontal edges in
   MNIST digits.
3. Output sizes floor((H + 2p - k) / s) + 1 for a grid of kernel/stride/padding settings,
   checked against the shapes Conv2D actually returns.
4. Max pooling done by hand on an edge map: every 2x2 block replaced by its largest value.
"""
from __future__ import annotations

import numpy as np

from section3_cnn.layers import Conv2D, MaxPool2D, output_size
from shared_utils import cli, data, plots, runs, stats

SOBEL_VERTICAL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)  # responds to left-right change
SOBEL_HORIZONTAL = SOBEL_VERTICAL.T


def conv2d_loops(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The definition, one multiply-add at a time: x (N, C, H, W), weight (F, C, kh, kw) -> (N, F, Ho, Wo)."""
    n, c, h, w = x.shape
    f, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    out = np.zeros((n, f, ho, wo))
    for i in range(n):
        for k in range(f):
            for r in range(ho):
                for q in range(wo):
                    patch = xp[i, :, r * stride:r * stride + kh, q * stride:q * stride + kw]
                    out[i, k, r, q] = np.sum(patch * weight[k]) + bias[k]
    return out


def conv_with_kernels(images: np.ndarray, kernels: list[np.ndarray]) -> np.ndarray:
    """Apply fixed 3x3 kernels with 'same' padding through Conv2D: (N, 1, H, W) -> (N, H, W, K)."""
    conv = Conv2D(1, len(kernels), 3, padding=1, dtype=np.float64)
    conv.weight.data[...] = np.stack(kernels, axis=-1)[:, :, None, :]   # (kh, kw, C=1, K)
    conv.bias.data[...] = 0
    return conv.forward(images.transpose(0, 2, 3, 1))


def main(argv=None):
    p = cli.parser(__doc__, quick={"epochs": 1})
    p.add_argument("--digits", type=cli.positive_int, default=6, help="test digits to show")
    args = cli.parse(p, argv)
    rng = np.random.default_rng(args.seed)
    ds = data.mnist(args.data_dir, quiet=args.quiet)     # inputs first: no run folder for missing data
    run = runs.RunDir(__file__, "conv_mechanics", args)
    images = ds.test.x[:args.digits].astype(np.float64) / 255.0            # (N, 1, 28, 28)

    # 1. loops vs im2col, with stride and padding
    agreement = []
    for stride, padding in ((1, 0), (1, 1), (2, 1)):
        conv = Conv2D(1, 4, 3, stride=stride, padding=padding, rng=rng, dtype=np.float64)
        conv.bias.data[...] = rng.standard_normal(4)
        fast = conv.forward(images[:2].transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        slow = conv2d_loops(images[:2], conv.weight.data.transpose(3, 2, 0, 1), conv.bias.data, stride, padding)
        agreement.append({"stride": stride, "padding": padding, "max_abs_diff": float(np.abs(fast - slow).max())})
        print(f"loops vs im2col, stride {stride}, padding {padding}: max |difference| {agreement[-1]['max_abs_diff']:.2e}")

    # 2. Sobel edges, no training
    edges = conv_with_kernels(images, [SOBEL_VERTICAL, SOBEL_HORIZONTAL])   # (N, 28, 28, 2)
    magnitude = np.hypot(edges[..., 0], edges[..., 1])
    panels, titles = [], []
    for i in range(args.digits):
        panels += [images[i, 0], edges[i, :, :, 0], edges[i, :, :, 1], magnitude[i]]
        titles += [f"digit {ds.test.y[i]}", "vertical edges", "horizontal edges", "edge magnitude"]
    plots.image_grid(panels, run / "sobel_edges.png", titles=titles, ncols=4, cmap="RdBu_r", symmetric=True,
                     title="Hand-made Sobel kernels on MNIST test digits (no training)",
                     colorbar_label="response (pixel intensity differences)")

    # 3. output sizes: formula vs the layer
    header = ["input", "kernel", "stride", "padding", "formula", "Conv2D output", "match"]
    rows = []
    for size in (28, 32):
        for k in (1, 3, 5):
            for s in (1, 2):
                for pad in (0, k // 2):
                    formula = output_size(size, k, s, pad)
                    actual = Conv2D(1, 1, k, stride=s, padding=pad).forward(np.zeros((1, size, size, 1), np.float32)).shape[1]
                    rows.append([size, k, s, pad, formula, actual, "yes" if formula == actual else "NO"])
    stats.write_table(header, rows, run / "output_sizes", caption="Output size = floor((H + 2p - k) / s) + 1")

    # 4. max pooling by hand on the edge map of the first digit
    edge_map = magnitude[0]
    manual = edge_map.reshape(14, 2, 14, 2).max(axis=(1, 3))             # each 2x2 block -> its maximum
    layer = MaxPool2D(2).forward(edge_map[None, :, :, None])[0, :, :, 0]
    plots.image_grid([edge_map, manual], run / "max_pooling.png", titles=["edge magnitude 28x28", "2x2 max pool 14x14"],
                     ncols=2, cmap="magma", title="Max pooling keeps the strongest response in every 2x2 block",
                     colorbar_label="edge magnitude")
    print("a 4x4 corner of the edge map and its 2x2 max pool (rows 10-13, cols 10-13):")
    print(np.array2string(edge_map[10:14, 10:14], precision=2))
    print(np.array2string(manual[5:7, 5:7], precision=2))
    summary = run.summary(loops_vs_im2col=agreement, output_sizes_all_match=all(r[-1] == "yes" for r in rows),
                          manual_pool_equals_layer=bool(np.array_equal(manual, layer)))
    print(f"output sizes: {sum(r[-1] == 'yes' for r in rows)}/{len(rows)} match the formula; "
          f"manual max pool equals MaxPool2D: {summary['manual_pool_equals_layer']}")
    return summary


if __name__ == "__main__":
    cli.run(main)
