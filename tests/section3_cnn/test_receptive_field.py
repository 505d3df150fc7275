import numpy as np
import pytest

from section3_cnn import receptive_field as rf


def test_known_receptive_fields():
    assert [r["receptive_field"] for r in rf.receptive_fields(rf.OUR_CNN)] == [3, 4, 8, 10]
    assert [r["jump"] for r in rf.receptive_fields(rf.OUR_CNN)] == [1, 2, 2, 4]
    # published values: AlexNet pool5 195 px, VGG-16 pool5 212 px, ResNet-18 last conv 435 px
    assert rf.receptive_fields(rf.ALEXNET)[-1]["receptive_field"] == 195
    assert rf.receptive_fields(rf.VGG16)[-1]["receptive_field"] == 212
    assert rf.receptive_fields(rf.RESNET18)[-1]["receptive_field"] == 435


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("unit", [(3, 3), (0, 0), (6, 2)])
def test_formula_equals_empirical_field(depth, unit):
    row = rf.receptive_fields(rf.OUR_CNN)[depth - 1]
    side = 28 // row["jump"]
    unit = (min(unit[0], side - 1), min(unit[1], side - 1))
    mask = rf.empirical_field(depth, unit)
    r0, r1, c0, c1 = rf.theoretical_box(row, unit)
    expected = np.zeros_like(mask)
    expected[r0:r1, c0:c1] = True
    np.testing.assert_array_equal(mask, expected)
