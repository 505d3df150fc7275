"""Intrinsic dimension of a point cloud: how many numbers it takes to say where a point lies on the data's
manifold, whatever the number of pixels. NumPy and scikit-learn only.

Three estimates, each from a different idea:

- ``pca_dimensions``: the number of principal components that keep 90/95/99% of the variance. Linear: a
  curved 2-D sheet in 3-D needs all 3.
- ``two_nn`` (Facco, d'Errico, Rodriguez & Laio, Scientific Reports 2017): if the density is locally
  constant, the ratio mu = r2 / r1 of each point's second- to first-neighbour distance follows the Pareto
  law P(mu > t) = t^-d, whatever the density. So -log(1 - F(mu)) = d log(mu): a line through the origin
  whose slope is d, fitted on the empirical distribution with the largest ratios (the noisiest) left out.
- ``levina_bickel`` (Levina & Bickel, NeurIPS 2004, with MacKay & Ghahramani's correction): treating the
  number of neighbours within a growing radius as a Poisson process gives, at each point x, the maximum-
  likelihood estimate 1 / m_k(x) = mean_{j<k} log(T_k(x) / T_j(x)) from its k nearest distances T_j; the
  inverses are averaged over points (averaging m_k itself is biased upward), and the result over k1..k2.

Both neighbour estimators are local: they see the manifold, not the ambient space, and are tested on
synthetic data of known dimension embedded in many more (tests/projects/test_intrinsic_dimension.py).
"""
from __future__ import annotations

import numpy as np

from shared_utils.errors import UserError


def neighbour_distances(x: np.ndarray, k: int) -> np.ndarray:
    """(N, k) distances from each point to its k nearest other points, nearest first; exact duplicates of a
    point are dropped first (a zero distance carries no scale)."""
    from sklearn.neighbors import NearestNeighbors

    x = np.unique(np.asarray(x, dtype=np.float64), axis=0)
    if len(x) <= k:
        raise UserError(f"{len(x)} distinct points cannot give {k} neighbours each; use more points")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return distances[:, 1:]          # column 0 is the point itself


def two_nn(x: np.ndarray | None = None, *, distances: np.ndarray | None = None, discard: float = 0.1) -> float:
    """TwoNN dimension from the points ``x`` or their (N, >= 2) sorted ``distances``; ``discard`` is the
    fraction of the largest ratios left out of the fit (Facco et al. use 10%)."""
    r = neighbour_distances(x, 2) if distances is None else np.asarray(distances, dtype=np.float64)
    if not 0.0 <= discard < 1.0:
        raise ValueError(f"discard must be in [0, 1), got {discard}")
    mu = np.sort(r[:, 1] / r[:, 0])
    n = len(mu)
    kept = max(2, int(np.floor(n * (1.0 - discard))))
    empirical = np.arange(1, n + 1) / n                              # F(mu_i) at the i-th smallest ratio
    log_mu = np.log(mu[:kept])
    target = -np.log1p(-empirical[:kept].clip(max=1 - 1e-12))
    return float(log_mu @ target / (log_mu @ log_mu))               # least squares through the origin


def levina_bickel(x: np.ndarray | None = None, *, distances: np.ndarray | None = None, k1: int = 10,
                  k2: int = 20) -> float:
    """Levina-Bickel MLE averaged over k = k1..k2, from points ``x`` or their (N, >= k2) sorted ``distances``."""
    if not 2 <= k1 <= k2:
        raise ValueError(f"need 2 <= k1 <= k2, got k1={k1}, k2={k2}")
    t = neighbour_distances(x, k2) if distances is None else np.asarray(distances, dtype=np.float64)[:, :k2]
    log_t = np.log(t)
    estimates = []
    for k in range(k1, k2 + 1):
        inverse = (log_t[:, k - 1:k] - log_t[:, :k - 1]).mean(axis=1)   # 1 / m_k(x) per point
        estimates.append(1.0 / inverse.mean())                           # MacKay-Ghahramani: average inverses
    return float(np.mean(estimates))


def pca_dimensions(x: np.ndarray, fractions=(0.90, 0.95, 0.99)) -> dict[float, int]:
    """{fraction: the fewest principal components whose variance adds up to at least that fraction}."""
    from sklearn.decomposition import PCA

    ratio = np.cumsum(PCA().fit(np.asarray(x, dtype=np.float64)).explained_variance_ratio_)
    return {f: int(np.searchsorted(ratio, f - 1e-12) + 1) for f in fractions}


def curved_manifold(n: int, dim: int, ambient: int, *, seed: int = 0, noise: float = 0.0) -> np.ndarray:
    """``n`` points on a smooth, curved ``dim``-dimensional manifold in ``ambient`` dimensions: uniform
    coordinates z in [0, 1]^dim, lifted by (z, sin(pi z), cos(pi z)) so the sheet bends out of every linear
    subspace of dimension dim, then rotated into the ambient space by a random orthonormal map; ``noise`` adds
    isotropic Gaussian noise of that standard deviation. Its intrinsic dimension is ``dim`` exactly."""
    if ambient < 3 * dim:
        raise ValueError(f"a {dim}-D manifold lifted to {3 * dim} coordinates needs ambient >= {3 * dim}")
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.0, 1.0, size=(n, dim))
    lifted = np.concatenate([z, 0.5 * np.sin(np.pi * z), 0.5 * np.cos(np.pi * z)], axis=1)   # (n, 3 dim)
    basis, _ = np.linalg.qr(rng.standard_normal((ambient, 3 * dim)))                          # (ambient, 3 dim)
    return lifted @ basis.T + noise * rng.standard_normal((n, ambient))
