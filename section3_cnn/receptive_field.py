"""Which input pixels can a unit deep in a CNN see? Receptive fields, by formula and by gradient.

For a stack of layers with kernel k, stride s and padding p, every unit's receptive field
size r, the jump j between neighbouring units' fields (in input pixels) and the centre
("start") of the first unit's field follow
    r_out = r_in + (k - 1) * j_in,   j_out = j_in * s,   start_out = start_in + ((k - 1) / 2 - p) * j_in.
The table covers our CNN and classic stacks (AlexNet, VGG-16, ResNet-18's stem and stages).
On our CNN the formula is then checked empirically: the input pixels with a non-zero gradient
for one output unit are exactly its theoretical field. (The check uses average pooling and
positive weights so that every path carries gradient: max pooling and ReLU would route it to
only some pixels, a property of the input, not of the field.)
"""
from __future__ import annotations

import numpy as np

from section2_optimization import layers
from section3_cnn.layers import AvgPool2D, Conv2D, MaxPool2D
from section3_cnn.model import build_cnn
from shared_utils import cli, data, plots, runs, stats

# (name, kernel, stride, padding)
Layer = tuple[str, int, int, int]

OUR_CNN: list[Layer] = [("conv1 3x3", 3, 1, 1), ("pool1 2x2", 2, 2, 0), ("conv2 3x3", 3, 1, 1), ("pool2 2x2", 2, 2, 0)]
ALEXNET: list[Layer] = [("conv1 11x11/4", 11, 4, 2), ("pool1 3x3/2", 3, 2, 0), ("conv2 5x5", 5, 1, 2),
                        ("pool2 3x3/2", 3, 2, 0), ("conv3 3x3", 3, 1, 1), ("conv4 3x3", 3, 1, 1),
                        ("conv5 3x3", 3, 1, 1), ("pool5 3x3/2", 3, 2, 0)]
VGG16: list[Layer] = [item for block, convs in enumerate((2, 2, 3, 3, 3), start=1)
                      for item in [(f"conv{block}_{i} 3x3", 3, 1, 1) for i in range(1, convs + 1)]
                      + [(f"pool{block} 2x2", 2, 2, 0)]]
RESNET18: list[Layer] = ([("stem conv 7x7/2", 7, 2, 3), ("stem maxpool 3x3/2", 3, 2, 1)]
                         + [(f"layer1 conv{i} 3x3", 3, 1, 1) for i in range(1, 5)]
                         + [("layer2 conv1 3x3/2", 3, 2, 1)] + [(f"layer2 conv{i} 3x3", 3, 1, 1) for i in range(2, 5)]
                         + [("layer3 conv1 3x3/2", 3, 2, 1)] + [(f"layer3 conv{i} 3x3", 3, 1, 1) for i in range(2, 5)]
                         + [("layer4 conv1 3x3/2", 3, 2, 1)] + [(f"layer4 conv{i} 3x3", 3, 1, 1) for i in range(2, 5)])
STACKS = {"our CNN": OUR_CNN, "AlexNet": ALEXNET, "VGG-16": VGG16, "ResNet-18 (main path)": RESNET18}


def receptive_fields(stack: list[Layer]) -> list[dict]:
    """Field size r, jump j and first unit's centre, layer by layer (input: r=1, j=1, start=0.5)."""
    r, j, start = 1, 1, 0.5   # pixel centres at 0.5, 1.5, ... in input coordinates
    rows = []
    for name, k, s, p in stack:
        r, start, j = r + (k - 1) * j, start + ((k - 1) / 2 - p) * j, j * s
        rows.append({"layer": name, "kernel": k, "stride": s, "padding": p, "receptive_field": r, "jump": j,
                     "start": start})
    return rows


def empirical_field(depth: int, unit: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Boolean (28, 28) mask of input pixels with a non-zero gradient for one unit (channel 0) of
    the output of the first ``depth`` layers of OUR_CNN (convs and avg pools only, positive weights)."""
    model = build_cnn(pool="avg", seed=seed, dtype=np.float64)
    spatial = [layer for layer in model if isinstance(layer, (Conv2D, AvgPool2D, MaxPool2D))][:depth]
    for layer in spatial:
        if isinstance(layer, Conv2D):
            layer.weight.data[...] = np.abs(layer.weight.data) + 0.1
    net = layers.Sequential(model[0], *spatial, requires_input_grad=True)
    x = np.random.default_rng(seed).uniform(0.5, 1.0, (1, 1, 28, 28))
    out = net.forward(x)
    grad = np.zeros_like(out)
    grad[0, unit[0], unit[1], 0] = 1.0
    return net.backward(grad)[0, 0] != 0


def theoretical_box(row: dict, unit: tuple[int, int], size: int = 28) -> tuple[int, int, int, int]:
    """Pixel rows/cols [r0, r1) x [c0, c1) of a unit's field, clipped to the image (padding is not image)."""
    half = (row["receptive_field"] - 1) / 2
    centre_r, centre_c = row["start"] + unit[0] * row["jump"], row["start"] + unit[1] * row["jump"]
    r0, r1 = int(round(centre_r - 0.5 - half)), int(round(centre_r - 0.5 + half)) + 1
    c0, c1 = int(round(centre_c - 0.5 - half)), int(round(centre_c - 0.5 + half)) + 1
    return max(r0, 0), min(r1, size), max(c0, 0), min(c1, size)


def main(argv=None):
    p = cli.parser(__doc__, quick={"epochs": 1})
    p.add_argument("--unit", type=cli.nonneg_int, nargs=2, default=[3, 3], metavar=("ROW", "COL"),
                   help="output unit (row, col) of the last layer checked on our CNN")
    args = cli.parse(p, argv)
    last_side = 28 // receptive_fields(OUR_CNN)[-1]["jump"]
    if max(args.unit) >= last_side:
        p.error(f"argument --unit: the last layer is {last_side}x{last_side}; ROW and COL go from 0 to {last_side - 1}")
    digit = data.mnist(args.data_dir, quiet=args.quiet).test.x[0, 0].astype(float)   # inputs first, then the folder
    run = runs.RunDir(__file__, "receptive_field", args)
    header = ["network", "layer", "k", "s", "p", "receptive field (px)", "jump (px)", "start (px)"]
    rows = []
    for network, stack in STACKS.items():
        for r in receptive_fields(stack):
            rows.append([network, r["layer"], r["kernel"], r["stride"], r["padding"], r["receptive_field"], r["jump"],
                         f"{r['start']:g}"])
    stats.write_table(header, rows, run / "receptive_fields", caption="Theoretical receptive fields")
    ours = receptive_fields(OUR_CNN)
    checks, masks = [], []
    for depth, row in enumerate(ours, start=1):
        side = 28 // row["jump"]
        unit = (min(args.unit[0], side - 1), min(args.unit[1], side - 1))
        mask = empirical_field(depth, unit)
        r0, r1, c0, c1 = theoretical_box(row, unit)
        expected = np.zeros_like(mask)
        expected[r0:r1, c0:c1] = True
        checks.append({"layer": row["layer"], "unit": list(unit), "theoretical": row["receptive_field"],
                       "empirical_pixels": int(mask.sum()), "expected_pixels": int(expected.sum()),
                       "equal": bool((mask == expected).all())})
        masks.append((row["layer"], unit, mask, expected))
        print(f"{row['layer']:10s} unit {unit}: field {row['receptive_field']}x{row['receptive_field']}, "
              f"jump {row['jump']}, empirical = theoretical: {checks[-1]['equal']}")
    heats = [mask.astype(float) + 0.5 * (expected & ~mask) for _, _, mask, expected in masks]
    plots.heatmap_overlay(np.repeat(digit[None], len(masks), 0), np.array(heats), run / "field_on_digit.png",
                          titles=[f"{name}, unit {unit}: {ours[i]['receptive_field']}px" for i, (name, unit, _, _)
                                  in enumerate(masks)], ncols=len(masks),
                          title="Pixels with non-zero gradient for one unit (= the theoretical field)",
                          heat_label="1: pixel in the field (gradient non-zero)")
    for network, stack in STACKS.items():
        print(f"{network:22s} final receptive field {receptive_fields(stack)[-1]['receptive_field']} px")
    run.summary(checks=checks, all_equal=all(c["equal"] for c in checks),
                final_fields={n: receptive_fields(s)[-1]["receptive_field"] for n, s in STACKS.items()})
    return checks


if __name__ == "__main__":
    cli.run(main)
