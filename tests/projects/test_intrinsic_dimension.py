"""projects/representation_transfer/intrinsic_dimension.py on data whose dimension is known."""
import numpy as np
import pytest

from projects.representation_transfer import intrinsic_dimension as idim
from shared_utils.errors import UserError


@pytest.mark.parametrize("seed", [0, 1])
def test_neighbour_estimators_find_a_curved_5d_manifold_in_50d_within_15_percent(seed):
    x = idim.curved_manifold(4000, 5, 50, seed=seed)
    distances = idim.neighbour_distances(x, 20)
    for estimate in (idim.two_nn(distances=distances), idim.levina_bickel(distances=distances)):
        assert abs(estimate - 5) <= 0.15 * 5, estimate
    # the linear estimate cannot see through the curvature: more than 5 components for 90% of the variance
    assert idim.pca_dimensions(x)[0.90] > 5


def test_estimators_on_a_plane_and_on_full_dimensional_noise():
    plane = idim.curved_manifold(3000, 2, 10, seed=3)
    assert abs(idim.two_nn(plane) - 2) < 0.2 and abs(idim.levina_bickel(plane) - 2) < 0.2
    # a flat 3-D subspace: PCA is exact there (3 components hold all the variance)
    flat = np.random.default_rng(0).standard_normal((2000, 3)) @ np.random.default_rng(1).standard_normal((3, 20))
    assert idim.pca_dimensions(flat, fractions=(0.999,)) == {0.999: 3}
    assert abs(idim.two_nn(flat) - 3) < 0.3


def test_two_nn_recovers_d_from_exact_pareto_ratios():
    # mu = r2 / r1 with P(mu > t) = t^-d: the law TwoNN inverts; d = 7 drawn by inverse transform
    u = np.random.default_rng(0).uniform(size=200_000)
    mu = (1 - u) ** (-1 / 7)
    distances = np.stack([np.ones_like(mu), mu], axis=1)
    assert idim.two_nn(distances=distances) == pytest.approx(7, rel=0.01)


def test_duplicates_are_dropped_and_too_few_distinct_points_is_a_user_error():
    points = np.repeat(np.eye(4), 30, axis=0)        # 120 rows, 4 distinct points
    with pytest.raises(UserError, match="4 distinct points cannot give 20 neighbours"):
        idim.levina_bickel(points)
