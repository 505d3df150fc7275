"""The classical online change-point detectors and the scoring every detector (learned or not) gets. NumPy only.

Each detector maps streams ``x`` (n, T) to scores (n, T): at every step a number that grows with the evidence
that a change has happened by then. An alarm is the first step whose score exceeds a threshold h.

- :func:`cusum` is Page's (1954) recursion S_t = max(0, S_{t-1} + l_t) on per-step log-likelihood ratios l_t.
  With the exact ratio of the true pre- and post-change laws (:func:`oracle_llr`) it is the optimal detector
  of a known change (Lorden 1971, Moustakides 1986): the bound a learned detector is measured against.
- :func:`estimated_cusum` knows neither law: it estimates the pre-change mean and standard deviation from a
  warm-up window and runs a two-sided Gaussian-mean CUSUM designed for a shift of ``design_shift`` standard
  deviations. It can only see changes of the mean (a shape or correlation change leaves it blind).
- :func:`bocpd` is Bayesian online change-point detection (Adams & MacKay 2007) with a Normal-Gamma model of
  each segment (unknown mean and variance) and a constant hazard; its score is the posterior probability that
  at least one change has happened, 1 - P(run length = t | x_1..t).

Scoring (:func:`null_thresholds`, :func:`delays`): a threshold is set so that a share alpha of the no-change
streams ever alarm (the per-sequence false-alarm rate); the detection delay of a changed stream is the first
alarm at or after t* minus t*, and a change never detected is counted as a delay of T - t* (censored at the
end of the stream).
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln, logsumexp

LOG_2PI = float(np.log(2 * np.pi))


# --------------------------------------------------------------------------- CUSUM
def cusum(llr: np.ndarray) -> np.ndarray:
    """Page's CUSUM: S_t = max(0, S_{t-1} + llr_t), S_{-1} = 0, along the last axis."""
    llr = np.asarray(llr, dtype=np.float64)
    out = np.empty_like(llr)
    s = np.zeros(llr.shape[:-1])
    for t in range(llr.shape[-1]):
        s = np.maximum(0.0, s + llr[..., t])
        out[..., t] = s
    return out


def gaussian_logpdf(x, mean, sd):
    return -0.5 * LOG_2PI - np.log(sd) - 0.5 * ((x - mean) / sd) ** 2


def oracle_llr(x: np.ndarray, kind: str, magnitude, mu0, sigma0, sign=1.0) -> np.ndarray:
    """log p1(x_t | past) - log p0(x_t) for the generator's laws (shared_utils.data.sequences) with the true
    parameters: per stream ``magnitude``, ``mu0``, ``sigma0``, ``sign`` (arrays of n, or numbers)."""
    x = np.asarray(x, dtype=np.float64)
    col = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), x.shape[:1])[:, None]  # noqa: E731
    m, mu, sd, sg = col(magnitude), col(mu0), col(sigma0), col(sign)
    null = gaussian_logpdf(x, mu, sd)
    if kind == "mean":
        return gaussian_logpdf(x, mu + sg * m * sd, sd) - null
    if kind == "variance":
        return gaussian_logpdf(x, mu, (1.0 + m) * sd) - null
    if kind == "shape":   # an equal mixture of N(mu +- sqrt(m) sd, (1 - m) sd^2)
        spread = np.sqrt(np.clip(1.0 - m, 1e-12, None)) * sd
        a = gaussian_logpdf(x, mu + np.sqrt(m) * sd, spread)
        b = gaussian_logpdf(x, mu - np.sqrt(m) * sd, spread)
        return np.logaddexp(a, b) - np.log(2.0) - null
    if kind == "ar":      # x_t | x_{t-1} ~ N(mu + phi (x_{t-1} - mu), (1 - phi^2) sd^2); none before step 1
        prev = np.concatenate([mu + np.zeros_like(x[:, :1]), x[:, :-1]], 1)
        out = gaussian_logpdf(x, mu + m * (prev - mu), np.sqrt(1.0 - m ** 2) * sd) - null
        out[:, 0] = 0.0
        return out
    raise ValueError(f"unknown change kind {kind!r}")


def estimated_cusum(x: np.ndarray, warmup: int = 30, design_shift: float = 1.0) -> np.ndarray:
    """Two-sided Gaussian-mean CUSUM on z = (x - mean) / sd, with mean and sd from the first ``warmup`` steps:
    max(S+, S-) with S+ on z - k and S- on -z - k, k = design_shift / 2 (Page's reference value, which makes
    the increments the log-likelihood ratio of a +-design_shift shift up to a factor). Zero during the warm-up."""
    x = np.asarray(x, dtype=np.float64)
    if not 2 <= warmup < x.shape[1]:
        raise ValueError(f"warmup must be in [2, {x.shape[1] - 1}], got {warmup}")
    head = x[:, :warmup]
    z = (x - head.mean(1, keepdims=True)) / np.maximum(head.std(1, ddof=1, keepdims=True), 1e-8)
    k = design_shift / 2.0
    up, down = design_shift * (z - k), design_shift * (-z - k)
    up[:, :warmup] = down[:, :warmup] = 0.0          # the warm-up adds no evidence
    return np.maximum(cusum(up), cusum(down))


# --------------------------------------------------------------------------- BOCPD
def student_t_logpdf(x, mean, kappa, alpha, beta):
    """The Normal-Gamma(mean, kappa, alpha, beta) posterior predictive: Student t with 2 alpha degrees of
    freedom, location ``mean`` and squared scale beta (kappa + 1) / (alpha kappa)."""
    nu = 2.0 * alpha
    scale2 = beta * (kappa + 1.0) / (alpha * kappa)
    return (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi * scale2)
            - (nu + 1) / 2 * np.log1p((x - mean) ** 2 / (nu * scale2)))


def bocpd(x: np.ndarray, hazard: float = 1 / 100, prior: tuple[float, float, float, float] = (0.0, 0.01, 1.0, 1.0),
          return_posterior: bool = False):
    """Adams & MacKay (2007) on each row of ``x`` (n, T). The run length r_t counts the observations of the
    current segment, x_t included: r_1 = 1, then each step either extends the run (probability 1 - H) or
    starts a new one (H). Each segment is Gaussian with unknown mean and precision under the Normal-Gamma
    ``prior`` (mean, kappa, alpha, beta); predictives are Student t. Returns the score 1 - P(r_t = t | x_1..t),
    the probability of at least one change by step t; with ``return_posterior`` also the (n, T, T) posterior
    P(r_t = r | x_1..t) at index [.., t-1, r-1]."""
    x = np.asarray(x, dtype=np.float64)
    n, T = x.shape
    if not 0.0 < hazard < 1.0:
        raise ValueError(f"hazard must be in (0, 1), got {hazard}")
    m0, k0, a0, b0 = prior
    log_h, log_1h = np.log(hazard), np.log1p(-hazard)
    # per run length r = 1..t (index r-1): the posterior parameters after the run's r observations
    kappa = np.array([k0 + 1.0])
    alpha = np.array([a0 + 0.5])
    mean = (k0 * m0 + x[:, :1]) / (k0 + 1.0)
    beta = b0 + k0 * (x[:, :1] - m0) ** 2 / (2 * (k0 + 1.0))
    log_r = np.zeros((n, 1))                      # log P(r_1 = 1 | x_1) = 0
    score = np.zeros((n, T))
    post = np.zeros((n, T, T)) if return_posterior else None
    if post is not None:
        post[:, 0, 0] = 1.0
    for t in range(1, T):
        xt = x[:, t:t + 1]
        grow = log_r + log_1h + student_t_logpdf(xt, mean, kappa, alpha, beta)          # r -> r + 1
        fresh = logsumexp(log_r, axis=1, keepdims=True) + log_h + \
            student_t_logpdf(xt, m0, k0, a0, b0)                                         # -> r = 1
        log_joint = np.concatenate([fresh, grow], 1)
        log_r = log_joint - logsumexp(log_joint, axis=1, keepdims=True)
        # update every run's parameters with x_t; the new run starts from the prior
        new_mean = np.concatenate([np.full((n, 1), m0), mean], 1)
        new_beta = np.concatenate([np.full((n, 1), b0), beta], 1)
        new_kappa = np.concatenate([[k0], kappa])
        new_alpha = np.concatenate([[a0], alpha])
        beta = new_beta + new_kappa * (xt - new_mean) ** 2 / (2 * (new_kappa + 1.0))
        mean = (new_kappa * new_mean + xt) / (new_kappa + 1.0)
        kappa, alpha = new_kappa + 1.0, new_alpha + 0.5
        score[:, t] = -np.expm1(log_r[:, -1])     # 1 - P(r_t = t)
        if post is not None:
            post[:, t, :t + 1] = np.exp(log_r)
    return (score, post) if return_posterior else score


def normal_gamma_log_marginal(x: np.ndarray, prior: tuple[float, float, float, float]) -> float:
    """log p(x_1..x_n) of one segment under the Normal-Gamma prior, in closed form (for hand checks)."""
    m0, k0, a0, b0 = prior
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    xbar = x.mean()
    kn, an = k0 + n, a0 + n / 2
    bn = b0 + 0.5 * ((x - xbar) ** 2).sum() + k0 * n * (xbar - m0) ** 2 / (2 * kn)
    return float(gammaln(an) - gammaln(a0) + a0 * np.log(b0) - an * np.log(bn)
                 + 0.5 * (np.log(k0) - np.log(kn)) - n / 2 * np.log(2 * np.pi))


# --------------------------------------------------------------------------- scoring
def null_thresholds(null_scores: np.ndarray, rates) -> np.ndarray:
    """Thresholds h at which a share ``rates`` of the no-change streams ever score above h (alarm when
    score > h): the (1 - alpha) quantile of each stream's maximum score."""
    peaks = np.nanmax(np.asarray(null_scores, dtype=np.float64), axis=1)
    return np.quantile(peaks, 1.0 - np.asarray(rates, dtype=np.float64), method="higher")


def first_alarm(scores: np.ndarray, h: float, start=0) -> np.ndarray:
    """The first step t >= start (per row) with score > h, or -1 when there is none."""
    scores = np.asarray(scores)
    steps = np.arange(scores.shape[1])[None, :]
    hit = (scores > h) & (steps >= np.asarray(start).reshape(-1, 1))
    return np.where(hit.any(1), hit.argmax(1), -1)


def delays(scores: np.ndarray, t_star: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """(delay, detected) per changed stream at threshold h: first alarm at or after t* minus t*; undetected
    changes count T - t* (the rest of the stream)."""
    alarm = first_alarm(scores, h, t_star)
    detected = alarm >= 0
    return np.where(detected, alarm - t_star, scores.shape[1] - t_star).astype(np.float64), detected


def delay_curve(null_scores: np.ndarray, scores: np.ndarray, t_star: np.ndarray, rates) -> dict[str, np.ndarray]:
    """Mean delay and detection rate of the changed streams at each false-alarm rate in ``rates``."""
    hs = null_thresholds(null_scores, rates)
    mean_delay, detected = [], []
    for h in hs:
        d, hit = delays(scores, t_star, h)
        mean_delay.append(d.mean())
        detected.append(hit.mean())
    return {"rates": np.asarray(rates, dtype=float), "thresholds": hs, "delay": np.array(mean_delay),
            "detected": np.array(detected)}


def step_accuracy(scores: np.ndarray, targets: np.ndarray, h: float) -> float:
    """Share of steps whose alarm state (score > h) equals the "changed by now" label."""
    return float(((np.asarray(scores) > h) == (np.asarray(targets) > 0.5)).mean())


def aligned(scores: np.ndarray, t_star: np.ndarray, before: int, after: int) -> np.ndarray:
    """Scores on the window t* - before .. t* + after of each changed stream, (n, before + after + 1); steps
    outside the stream are NaN."""
    offsets = np.arange(-before, after + 1)
    idx = t_star[:, None] + offsets[None, :]
    inside = (idx >= 0) & (idx < scores.shape[1])
    out = np.take_along_axis(np.asarray(scores, dtype=np.float64), np.clip(idx, 0, scores.shape[1] - 1), 1)
    return np.where(inside, out, np.nan)


def aligned_mean(scores: np.ndarray, t_star: np.ndarray, before: int, after: int) -> np.ndarray:
    """The mean over streams of :func:`aligned`, offset by offset, over the streams that reach that offset;
    NaN where none does (without NumPy's empty-slice warning)."""
    window = aligned(scores, t_star, before, after)
    count = np.isfinite(window).sum(0)
    return np.where(count > 0, np.nansum(window, 0) / np.maximum(count, 1), np.nan)
