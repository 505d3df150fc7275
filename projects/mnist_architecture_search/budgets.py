"""Parameter budgets, derived analytically: the width (MLP) or channels (CNN) that spend a budget.

MLP with ``d`` hidden layers of equal width ``w`` on ``n_in`` inputs and ``k`` classes (weights and biases):

    P(d, w) = (n_in + 1) w  +  (d - 1)(w + 1) w  +  (w + 1) k
            = (d - 1) w^2 + (n_in + d + k) w + k

For d = 1 it is linear in w; for d >= 2 a quadratic whose positive root gives the real width, rounded to
the integer whose count is nearest the budget. One unit of width costs at least n_in + k + d parameters
(795+ on MNIST), 8% of a 10k budget, so with equal widths the small budgets cannot all land within 2%:
10k at depths 1, 2 and 6 land 2.9-3.5% away; every other (budget, depth) is
within 2%, and every width is the best integer there is.

CNN family (two 3x3 'same' convolutions with c1 and c2 channels, each followed by ReLU and a 2x2 max pool,
then one linear layer from the (side/4)^2 c2 features to k classes; one input channel):

    P(c1, c2) = 10 c1  +  (9 c1 + 1) c2  +  (side/4)^2 c2 k + k

With one width a channel costs hundreds of parameters (several % of a 10k budget), so both are solved:
for each c1, c2 follows from the budget, and the pair within tolerance whose ratio c2/c1 is nearest 2
(the usual doubling) is kept.

Training FLOPs are counted from the same shapes (a multiply-add is 2 FLOPs; biases, activations and
pooling are not counted, as in torch.utils.flop_counter): forward, the weight gradients, and the input
gradients of every layer but the first (autograd skips the gradient of data that needs none).
"""
from __future__ import annotations

import math

from shared_utils.errors import UserError

MNIST_INPUTS, MNIST_SIDE, CLASSES = 784, 28, 10
BUDGETS = (10_000, 25_000, 50_000, 100_000, 200_000)
DEPTHS = (1, 2, 3, 4, 5, 6)
TOLERANCE = 0.02


# --------------------------------------------------------------------------- MLP
def mlp_parameters(depth: int, width: int, n_in: int = MNIST_INPUTS, classes: int = CLASSES) -> int:
    """P(d, w) for ``depth`` hidden layers of ``width`` units."""
    return (depth - 1) * width * width + (n_in + depth + classes) * width + classes


def mlp_width(budget: int, depth: int, n_in: int = MNIST_INPUTS, classes: int = CLASSES) -> int:
    """The integer width whose parameter count is nearest ``budget``; refuses a budget too small for the depth."""
    if depth < 1:
        raise UserError(f"depth must be at least 1, got {depth}")
    a, b, c = depth - 1, n_in + depth + classes, classes - budget
    real = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    if real < 1:
        smallest = mlp_parameters(depth, 1, n_in, classes)
        raise UserError(f"a budget of {budget:,} parameters is too small for {depth} hidden layer(s): even width 1 "
                        f"needs {smallest:,}; give at least that")
    candidates = [w for w in (math.floor(real), math.ceil(real)) if w >= 1]
    return min(candidates, key=lambda w: abs(mlp_parameters(depth, w, n_in, classes) - budget))


def mlp_layer_sizes(budget: int, depth: int) -> list[int]:
    return [MNIST_INPUTS] + [mlp_width(budget, depth)] * depth + [CLASSES]


# --------------------------------------------------------------------------- CNN
def cnn_parameters(c1: int, c2: int, side: int = MNIST_SIDE, classes: int = CLASSES) -> int:
    features = (side // 4) ** 2 * c2
    return (9 * 1 + 1) * c1 + (9 * c1 + 1) * c2 + (features + 1) * classes


def cnn_channels(budget: int, tolerance: float = TOLERANCE, side: int = MNIST_SIDE,
                 classes: int = CLASSES) -> tuple[int, int]:
    """(c1, c2) within ``tolerance`` of ``budget`` with c2/c1 nearest 2."""
    best = None
    for c1 in range(1, 1024):
        # P is linear in c2 once c1 is fixed: solve, then try the integers either side
        per_c2 = 9 * c1 + 1 + (side // 4) ** 2 * classes
        base = 10 * c1 + classes
        if base + per_c2 > budget * (1 + tolerance):
            break
        real = (budget - base) / per_c2
        for c2 in {max(1, math.floor(real)), max(1, math.ceil(real))}:
            if abs(cnn_parameters(c1, c2, side, classes) - budget) <= tolerance * budget:
                score = abs(math.log(c2 / c1 / 2))
                if best is None or score < best[0]:
                    best = (score, c1, c2)
    if best is None:
        raise UserError(f"no two-convolution CNN has {budget:,} parameters within {tolerance:.0%}; the smallest "
                        f"has {cnn_parameters(1, 1, side, classes):,}")
    return best[1], best[2]


# --------------------------------------------------------------------------- training FLOPs
def mlp_train_flops(sizes: list[int], examples: int) -> int:
    """FLOPs of one training pass over ``examples`` (forward, weight gradients, input gradients but the first)."""
    products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * examples * (2 * sum(products) + sum(products[1:]))


def cnn_train_flops(c1: int, c2: int, examples: int, side: int = MNIST_SIDE, classes: int = CLASSES) -> int:
    conv1 = side * side * c1 * 9 * 1                  # multiply-adds per example
    conv2 = (side // 2) ** 2 * c2 * 9 * c1
    fc = (side // 4) ** 2 * c2 * classes
    return 2 * examples * (2 * (conv1 + conv2 + fc) + conv2 + fc)
