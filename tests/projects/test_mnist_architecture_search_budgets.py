"""Parameter budgets and training FLOPs of projects/mnist_architecture_search, checked against the models
PyTorch builds and against torch.utils.flop_counter."""
import pytest

torch = pytest.importorskip("torch")

from projects.mnist_architecture_search import budgets  # noqa: E402
from projects.mnist_architecture_search.models import TwoConvCNN  # noqa: E402
from shared_utils.errors import UserError  # noqa: E402
from shared_utils.pytorch.models import MLP, count_parameters  # noqa: E402


def mlp(depth, width, activation="relu"):
    return MLP(hidden=(width,) * depth, in_features=784, classes=10, activation=activation)


@pytest.mark.parametrize("depth", budgets.DEPTHS)
@pytest.mark.parametrize("budget", budgets.BUDGETS)
def test_mlp_formula_equals_the_count_and_every_width_spends_its_budget(budget, depth):
    width = budgets.mlp_width(budget, depth)
    model = mlp(depth, width)
    assert budgets.mlp_parameters(depth, width) == count_parameters(model)       # exact, not approximate
    # within 2%, except where one unit of width alone costs more than 4% of the budget (784 inputs: a unit of
    # the first layer is 795+ parameters, 8% of 10k): there the nearest integer width is the best there is
    unit_cost = budgets.mlp_parameters(depth, width + 1) - budgets.mlp_parameters(depth, width)
    assert abs(count_parameters(model) - budget) <= max(0.02 * budget, unit_cost / 2), (width, count_parameters(model))
    # nearest integer: one unit wider or narrower is no closer to the budget
    for other in (width - 1, width + 1):
        if other >= 1:
            assert abs(budgets.mlp_parameters(depth, other) - budget) >= abs(budgets.mlp_parameters(depth, width) - budget)


@pytest.mark.parametrize("budget", budgets.BUDGETS)
def test_cnn_channels_spend_their_budget(budget):
    c1, c2 = budgets.cnn_channels(budget)
    model = TwoConvCNN(c1, c2)
    assert budgets.cnn_parameters(c1, c2) == count_parameters(model)
    assert abs(count_parameters(model) - budget) <= 0.02 * budget
    assert 1.4 <= c2 / c1 <= 2.8                               # the usual doubling, within the lattice
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_budgets_too_small_are_refused_with_the_minimum():
    with pytest.raises(UserError, match=r"too small for 6 hidden layer\(s\): even width 1 needs 815"):
        budgets.mlp_width(800, 6)
    with pytest.raises(UserError, match="the smallest has"):
        budgets.cnn_channels(100)


def counted_training_flops(model, x, y):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("depth, width", [(1, 32), (3, 64), (6, 20)])
def test_mlp_training_flops_match_torchs_counter(depth, width):
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    sizes = [784] + [width] * depth + [10]
    counted = counted_training_flops(mlp(depth, width), x, y)
    assert abs(budgets.mlp_train_flops(sizes, 16) - counted) <= 0.01 * counted, (budgets.mlp_train_flops(sizes, 16), counted)


@pytest.mark.parametrize("c1, c2", [(4, 8), (9, 17), (16, 30)])
def test_cnn_training_flops_match_torchs_counter(c1, c2):
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    counted = counted_training_flops(TwoConvCNN(c1, c2), x, y)
    assert abs(budgets.cnn_train_flops(c1, c2, 8) - counted) <= 0.01 * counted, (budgets.cnn_train_flops(c1, c2, 8), counted)
