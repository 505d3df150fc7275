"""projects/sequence_models part A's pieces that need no training: the change-point generator, CUSUM and
BOCPD on cases with known answers, and the delay / false-alarm scoring."""
import itertools

import numpy as np
import pytest
from scipy import stats as st

from projects.sequence_models import detectors as d
from shared_utils.data import sequences as seq
from shared_utils.errors import UserError


# --------------------------------------------------------------------------- the generator
def test_t_star_is_uniform_over_the_window_and_no_change_streams_stay_unchanged():
    s = seq.change_point_sequences(20000, length=100, window=(20, 59), p_change=0.5, seed=3)
    changed = s.t_star >= 0
    assert abs(changed.mean() - 0.5) < 0.015
    assert s.t_star[changed].min() == 20 and s.t_star[changed].max() == 59
    counts = np.bincount(s.t_star[changed] - 20, minlength=40)
    assert st.chisquare(counts).pvalue > 1e-3                        # uniform over the 40 steps
    assert set(s.kind[~changed]) == {"none"} and (s.magnitude[~changed] == 0).all()
    y = s.targets()
    assert (y[~changed] == 0).all()
    i = np.nonzero(changed)[0][0]
    assert y[i, :s.t_star[i]].sum() == 0 and (y[i, s.t_star[i]:] == 1).all()


def test_the_same_seed_gives_the_same_streams_and_another_seed_does_not():
    a = seq.change_point_sequences(50, seed=7)
    b = seq.change_point_sequences(50, seed=7)
    c = seq.change_point_sequences(50, seed=8)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.t_star, b.t_star) and np.array_equal(a.kind, b.kind)
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("kind", seq.CHANGE_KINDS)
def test_each_kind_changes_only_what_it_says(kind):
    m = {"mean": 1.5, "variance": 1.0, "shape": 0.9, "ar": 0.8}[kind]
    s = seq.change_point_sequences(4000, length=120, kind=kind, magnitude=m, window=(60, 60), p_change=1.0, seed=1)
    z = (s.x - s.mu0[:, None]) / s.sigma0[:, None]                  # standardised by the stream's own baseline
    pre, post = z[:, :60].ravel(), z[:, 60:].ravel()
    assert abs(pre.mean()) < 0.02 and abs(pre.std() - 1) < 0.02 and abs(st.kurtosis(pre, fisher=False) - 3) < 0.1
    lag1 = lambda a: np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]  # noqa: E731
    signed = post.reshape(4000, 60) * (s.sign[:, None] if kind == "mean" else 1)
    expect = {"mean": (m, 1, 3, 0), "variance": (0, 1 + m, 3, 0), "shape": (0, 1, 3 - 2 * m ** 2, 0),
              "ar": (0, 1, 3, m)}[kind]
    got = (signed.mean(), signed.std(), st.kurtosis(signed.ravel(), fisher=False), lag1(signed - signed.mean()))
    assert got == pytest.approx(expect, abs=0.05)


def test_bad_settings_are_user_errors_with_one_line():
    with pytest.raises(UserError, match="at least 2"):
        seq.change_point_sequences(10, length=1)
    with pytest.raises(UserError, match="outside the sequence"):
        seq.change_point_sequences(10, length=100, window=(50, 100))
    with pytest.raises(UserError, match="outside the sequence"):
        seq.change_point_sequences(10, length=100, window=(0, 10))
    with pytest.raises(UserError, match="at least 2 tokens"):
        seq.token_queries(10, vocab=1)


# --------------------------------------------------------------------------- CUSUM
def test_cusum_by_hand():
    x = np.array([[0.0, 2.0, 2.0, -1.0, -3.0]])
    llr = d.oracle_llr(x, "mean", 1.0, 0.0, 1.0)                    # N(1, 1) vs N(0, 1): x - 1/2
    assert np.allclose(llr, x - 0.5)
    assert np.allclose(d.cusum(llr), [[0.0, 1.5, 3.0, 1.5, 0.0]])


def test_oracle_llr_is_the_log_ratio_of_the_true_densities():
    x = np.random.default_rng(0).normal(size=(3, 6))
    mu, sd = 0.3, 1.7
    var = d.oracle_llr(x, "variance", 0.5, mu, sd)
    assert np.allclose(var, st.norm.logpdf(x, mu, 1.5 * sd) - st.norm.logpdf(x, mu, sd))
    shape = d.oracle_llr(x, "shape", 0.64, mu, sd)
    mix = 0.5 * st.norm.pdf(x, mu + 0.8 * sd, 0.6 * sd) + 0.5 * st.norm.pdf(x, mu - 0.8 * sd, 0.6 * sd)
    assert np.allclose(shape, np.log(mix) - st.norm.logpdf(x, mu, sd))
    ar = d.oracle_llr(x, "ar", 0.6, mu, sd)
    cond = st.norm.logpdf(x[:, 1:], mu + 0.6 * (x[:, :-1] - mu), 0.8 * sd) - st.norm.logpdf(x[:, 1:], mu, sd)
    assert np.allclose(ar[:, 1:], cond) and (ar[:, 0] == 0).all()


def test_estimated_cusum_finds_a_mean_shift_and_not_a_shape_change():
    mean = seq.change_point_sequences(400, kind="mean", magnitude=1.5, window=(100, 100), p_change=1.0, seed=2)
    shape = seq.change_point_sequences(400, kind="shape", magnitude=0.9, window=(100, 100), p_change=1.0, seed=2)
    null = seq.change_point_sequences(400, p_change=0.0, seed=5)
    h = d.null_thresholds(d.estimated_cusum(null.x), [0.05])[0]
    dm, hit_m = d.delays(d.estimated_cusum(mean.x), mean.t_star, h)
    _, hit_s = d.delays(d.estimated_cusum(shape.x), shape.t_star, h)
    assert hit_m.mean() > 0.95 and np.median(dm) < 15
    assert hit_s.mean() < 0.5                                        # blind: about its false-alarm rate


# --------------------------------------------------------------------------- BOCPD
PRIOR = (0.0, 1.0, 2.0, 1.5)


def enumerated_run_length(x, hazard, prior):
    """P(r_t = r | x_1..t) for every t by summing over all 2^(t-1) placements of change points."""
    T = len(x)
    out = np.zeros((T, T))
    for t in range(1, T + 1):
        for cuts in itertools.product([0, 1], repeat=t - 1):      # cuts[i] = 1: a new segment starts at i + 2
            starts = [0] + [i + 1 for i, c in enumerate(cuts) if c]
            bounds = starts + [t]
            logp = sum(np.log(hazard) if c else np.log1p(-hazard) for c in cuts)
            logp += sum(d.normal_gamma_log_marginal(x[a:b], prior) for a, b in zip(bounds[:-1], bounds[1:]))
            out[t - 1, t - starts[-1] - 1] += np.exp(logp)
        out[t - 1] /= out[t - 1].sum()
    return out


def test_bocpd_run_length_posterior_equals_brute_force_enumeration():
    x = np.array([0.1, -0.4, 0.3, 3.2, 2.7, 3.5, -0.2])
    _, post = d.bocpd(x[None], hazard=0.2, prior=PRIOR, return_posterior=True)
    assert np.allclose(post[0], enumerated_run_length(x, 0.2, PRIOR), atol=1e-10)


def test_bocpd_second_step_and_predictive_by_hand():
    # P(r_2 = 1) = H p0(x2) / (H p0(x2) + (1 - H) p(x2 | x1)); p(x2 | x1) = marginal(x1, x2) / marginal(x1)
    x = np.array([[0.5, 2.0]])
    h = 0.1
    p0 = np.exp(d.normal_gamma_log_marginal(x[0, 1:], PRIOR))
    p1 = np.exp(d.normal_gamma_log_marginal(x[0], PRIOR) - d.normal_gamma_log_marginal(x[0, :1], PRIOR))
    score = d.bocpd(x, hazard=h, prior=PRIOR)
    assert score[0, 0] == 0 and score[0, 1] == pytest.approx(h * p0 / (h * p0 + (1 - h) * p1), rel=1e-10)
    # the Student t predictive is the marginal likelihood of one observation
    assert np.exp(d.student_t_logpdf(1.3, *PRIOR)) == pytest.approx(
        np.exp(d.normal_gamma_log_marginal(np.array([1.3]), PRIOR)), rel=1e-12)


def test_bocpd_sees_a_large_jump_at_once_and_stays_calm_without_one():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (50, 120))
    x[:25, 60:] += 5.0
    score = d.bocpd(x)
    assert (score[:25, 62] > 0.99).all() and (score[:25, 55] < 0.5).mean() > 0.9
    assert np.median(score[25:, -1]) < 0.5


# --------------------------------------------------------------------------- scoring
def test_thresholds_give_the_false_alarm_rate_and_delays_are_censored():
    rng = np.random.default_rng(1)
    null = rng.random((1000, 50))
    h = d.null_thresholds(null, [0.1, 0.5])
    assert (null.max(1) > h[0]).mean() == pytest.approx(0.1, abs=0.002)
    assert (null.max(1) > h[1]).mean() == pytest.approx(0.5, abs=0.002)
    scores = np.zeros((3, 10))
    scores[0, 2] = scores[0, 6] = 1          # a false alarm at 2, the detection at 6
    scores[1, 4] = 1                         # detected the step it changed
    t_star = np.array([5, 4, 7])             # stream 2 is never detected: censored at 10 - 7
    delay, hit = d.delays(scores, t_star, 0.5)
    assert delay.tolist() == [1, 0, 3] and hit.tolist() == [True, True, False]
    win = d.aligned(np.arange(20.0).reshape(2, 10), np.array([1, 8]), 2, 2)
    assert np.isnan(win[0, 0]) and win[0, 1:].tolist() == [0, 1, 2, 3] and np.isnan(win[1, -1])
    # the mean over streams at each offset uses the streams that reach it; NaN (and no warning) where none does
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean = d.aligned_mean(np.arange(20.0).reshape(2, 10), np.array([1, 1]), 2, 9)
    assert np.isnan(mean[0]) and mean[1:3].tolist() == [5.0, 6.0] and np.isnan(mean[-1])
