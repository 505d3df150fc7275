"""Seeded synthetic sequences: streams whose distribution changes at an unknown step, and token sequences
with membership and bigram queries, and the reversal task (``reversal_task``). NumPy only; every array comes
from ``numpy.random.default_rng(seed)``.

    s = change_point_sequences(2000, length=200, kind="mean", magnitude=(0.5, 2.0), seed=0)
    s.x          # float32 (2000, 200), the observed streams
    s.t_star     # int64 (2000,): the first post-change step, or -1 for a sequence with no change
    s.targets()  # float32 (2000, 200): 1 from t* on, the "has a change happened yet?" label

Change-point streams. Before the change every stream is i.i.d. Gaussian with its own level ``mu0 ~ U(-1, 1)``
and scale ``sigma0 ~ logU(0.5, 2)``, so a detector has to learn the baseline from the stream itself. At
``t*``, uniform over the change window, one of four things changes; ``magnitude`` sets how much (in units of
``sigma0``):

    mean      the level moves by +-m sigma0 (random sign)
    variance  the scale grows to (1 + m) sigma0
    shape     same mean and variance, a new shape: the Gaussian becomes a two-component mixture at
              +-sqrt(m) sigma0, each of variance (1 - m) sigma0^2 (m = 0 is the Gaussian, m = 1 a coin flip
              of +-sigma0); kurtosis falls from 3 to 3 - 2 m^2
    ar        same marginal mean and variance, new correlation: x_t - mu0 = m (x_{t-1} - mu0) + e_t with
              Var(e) = (1 - m^2) sigma0^2, started in its stationary law

A share ``1 - p_change`` of the streams never change (``t_star == -1``): they measure false alarms. The
parameters of each stream are returned too (``mu0``, ``sigma0``, ``magnitude``, ``sign``), so an oracle can
use them.

Token sequences. ``token_queries`` draws sequences of ``length`` tokens from a vocabulary of ``vocab`` and,
for each, ``queries`` balanced questions: "did X appear?" and "did X and X+1 appear consecutively?", half
of each answered yes (one pair X, X+1 is planted per sequence; half the "no" bigram questions are hard: X and
X+1 both occur, but never side by side).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared_utils.errors import UserError

CHANGE_KINDS = ("mean", "variance", "shape", "ar")
# the magnitude range each kind trains on, and the grid it is scored on (difficulty: hard -> easy)
MAGNITUDE_RANGES = {"mean": (0.5, 2.0), "variance": (0.5, 2.0), "shape": (0.6, 0.95), "ar": (0.4, 0.9)}
MAGNITUDE_GRIDS = {"mean": (0.5, 1.0, 1.5, 2.0), "variance": (0.5, 1.0, 1.5, 2.0),
                   "shape": (0.6, 0.75, 0.85, 0.95), "ar": (0.4, 0.6, 0.75, 0.9)}
QUERY_TYPES = ("appear", "bigram")


@dataclass
class ChangeSequences:
    x: np.ndarray          # float32 (n, T)
    t_star: np.ndarray     # int64 (n,), -1 = no change
    kind: np.ndarray       # str (n,), "none" where there is no change
    magnitude: np.ndarray  # float64 (n,), 0 where there is no change
    sign: np.ndarray       # float64 (n,), +-1: the direction of a mean shift
    mu0: np.ndarray        # float64 (n,)
    sigma0: np.ndarray     # float64 (n,)

    def __len__(self) -> int:
        return len(self.t_star)

    @property
    def length(self) -> int:
        return int(self.x.shape[1])

    def targets(self) -> np.ndarray:
        """(n, T) float32: 1 at every step t >= t*, 0 before it and everywhere in a no-change stream."""
        steps = np.arange(self.length)[None, :]
        changed = self.t_star[:, None] >= 0
        return (changed & (steps >= self.t_star[:, None])).astype(np.float32)

    def select(self, mask: np.ndarray) -> "ChangeSequences":
        return ChangeSequences(*(getattr(self, f)[mask] for f in
                                 ("x", "t_star", "kind", "magnitude", "sign", "mu0", "sigma0")))


def check_change_settings(length: int, window: tuple[int, int], p_change: float = 0.5) -> None:
    """The one-line reasons a change-point request cannot be met (a UserError)."""
    if int(length) <= 1:
        raise UserError(f"sequence length must be at least 2 (a change needs a before and an after), got {length}")
    lo, hi = int(window[0]), int(window[1])
    if not 1 <= lo <= hi <= length - 1:
        raise UserError(f"change window {lo}-{hi} lies outside the sequence: it must satisfy "
                        f"1 <= start <= end <= {length - 1} for length {length}")
    if not 0.0 <= p_change <= 1.0:
        raise UserError(f"p_change must be in [0, 1], got {p_change}")


def change_point_sequences(n: int, *, length: int = 200, kind: str | tuple[str, ...] = CHANGE_KINDS,
                           magnitude: float | tuple[float, float] | None = None,
                           window: tuple[int, int] = (50, 150), p_change: float = 0.5,
                           seed: int = 0) -> ChangeSequences:
    """``n`` streams of ``length`` steps; a share ``p_change`` changes at ``t* ~ U{window}`` (inclusive).

    ``kind`` is one kind or a tuple to draw from uniformly per stream; ``magnitude`` a number, a (low, high)
    range drawn uniformly per stream, or None for the kind's own :data:`MAGNITUDE_RANGES`.
    """
    check_change_settings(length, window, p_change)
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    unknown = [k for k in kinds if k not in CHANGE_KINDS]
    if unknown or not kinds:
        raise UserError(f"unknown change kind {unknown[0] if unknown else '(none)'!r}; "
                        f"choose from {', '.join(CHANGE_KINDS)}")
    rng = np.random.default_rng(seed)
    n = int(n)
    mu0 = rng.uniform(-1.0, 1.0, n)
    sigma0 = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n))
    changed = rng.random(n) < p_change
    t_star = np.where(changed, rng.integers(window[0], window[1] + 1, n), -1).astype(np.int64)
    which = np.array(kinds)[rng.integers(0, len(kinds), n)]
    mag = np.zeros(n)
    for k in kinds:
        rows = which == k
        low, high = _magnitude_range(k, magnitude)
        mag[rows] = rng.uniform(low, high, rows.sum())
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    z = rng.standard_normal((n, length))          # the pre-change innovations (and the post-change ones)
    post = np.zeros((n, length), dtype=bool)
    post[changed] = np.arange(length)[None, :] >= t_star[changed, None]
    x = z.copy()
    m = mag[:, None]
    for k in kinds:
        rows = (which == k) & changed
        if not rows.any():
            continue
        p = post[rows]
        zr, mr = z[rows], m[rows]
        if k == "mean":
            x[rows] = np.where(p, zr + sign[rows, None] * mr, zr)
        elif k == "variance":
            x[rows] = np.where(p, zr * (1.0 + mr), zr)
        elif k == "shape":
            coin = np.where(rng.random(zr.shape) < 0.5, -1.0, 1.0)
            mixture = coin * np.sqrt(mr) + np.sqrt(1.0 - mr) * zr
            x[rows] = np.where(p, mixture, zr)
        else:  # ar: a stationary AR(1) from t* on, started from the stationary law (x_{t*-1} is N(0, 1) too)
            xr = zr.copy()
            phi = mr[:, 0]
            scale = np.sqrt(1.0 - phi ** 2)
            ts = t_star[rows]
            for t in range(int(ts.min()), length):
                on = ts <= t
                xr[on, t] = phi[on] * xr[on, t - 1] + scale[on] * zr[on, t]
            x[rows] = xr
    x = mu0[:, None] + sigma0[:, None] * x
    kind_out = np.where(changed, which, "none")
    return ChangeSequences(x.astype(np.float32), t_star, kind_out, np.where(changed, mag, 0.0),
                           sign, mu0, sigma0)


def _magnitude_range(kind: str, magnitude) -> tuple[float, float]:
    if magnitude is None:
        low, high = MAGNITUDE_RANGES[kind]
    elif np.ndim(magnitude) == 0:
        low = high = float(magnitude)
    else:
        low, high = (float(v) for v in magnitude)
    if not 0.0 <= low <= high:
        raise UserError(f"magnitude range {low}-{high} is not low <= high with low >= 0")
    if kind == "shape" and high > 1.0:
        raise UserError(f"a shape change's magnitude is a mixing share in [0, 1], got {high}")
    if kind == "ar" and high >= 1.0:
        raise UserError(f"an AR(1) coefficient must stay below 1 (stationary), got {high}")
    return low, high


# --------------------------------------------------------------------------- token sequences and queries
@dataclass
class TokenQueries:
    tokens: np.ndarray     # int64 (n, L), values in [0, vocab)
    query: np.ndarray      # int64 (n, q): the tokens X asked about
    qtype: np.ndarray      # int64 (n, q): 0 = "did X appear?", 1 = "did X, X+1 appear consecutively?"
    answer: np.ndarray     # int64 (n, q): 1 = yes
    vocab: int

    def __len__(self) -> int:
        return len(self.tokens)

    def packed(self) -> np.ndarray:
        """(n, L + 2 q) int64: the tokens, the q tokens asked about, the q query types: one input tensor."""
        return np.concatenate([self.tokens, self.query, self.qtype], 1)


def check_token_settings(vocab: int, length: int) -> None:
    if int(vocab) < 2:
        raise UserError(f"the vocabulary needs at least 2 tokens (a bigram query asks about X and X+1), got {vocab}")
    if int(length) < 2:
        raise UserError(f"token sequences need at least 2 tokens (a bigram), got length {length}")


def present_sets(tokens: np.ndarray, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, vocab) booleans: which tokens occur, and which X have X followed directly by X+1."""
    n = len(tokens)
    rows = np.arange(n)[:, None]
    seen = np.zeros((n, vocab), dtype=bool)
    seen[rows, tokens] = True
    follows = tokens[:, 1:] == tokens[:, :-1] + 1
    pairs = np.zeros((n, vocab), dtype=bool)
    r, c = np.nonzero(follows)
    pairs[r, tokens[r, c]] = True
    return seen, pairs


def _pick(pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row, uniform over the row's True entries (rows with none give -1)."""
    u = np.where(pool, rng.random(pool.shape, dtype=np.float32), -1.0)
    pick = u.argmax(1)
    return np.where(pool.any(1), pick, -1)


def token_queries(n: int, *, vocab: int = 128, length: int = 32, queries: int = 8, seed: int = 0) -> TokenQueries:
    """``n`` uniform random token sequences, each with ``queries`` (even) questions: half "did X appear?"
    (half of them yes), half "did X and X+1 appear consecutively?" (half yes). One pair X, X+1 is planted at a
    random position of every sequence, so each has a "yes" bigram to ask about; half of the "no" bigram
    questions are hard: X and X+1 both occur, but never side by side (where a sequence has such an X)."""
    check_token_settings(vocab, length)
    if queries < 2 or queries % 2:
        raise UserError(f"queries per sequence must be even and at least 2, got {queries}")
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (n, length))
    xs = rng.integers(0, vocab - 1, n)
    pos = rng.integers(0, length - 1, n)
    rows = np.arange(n)
    tokens[rows, pos], tokens[rows, pos + 1] = xs, xs + 1
    seen, pairs = present_sets(tokens, vocab)
    has_next = np.zeros(vocab, dtype=bool)
    has_next[:-1] = True
    both = np.zeros_like(seen)
    both[:, :-1] = seen[:, :-1] & seen[:, 1:]
    pools = {(0, 1): seen, (0, 0): ~seen, (1, 1): pairs & has_next,
             (1, 0): ~pairs & has_next, "hard": both & ~pairs}
    half = queries // 2
    qtype = np.repeat(np.array([0, 1]), half)[None, :].repeat(n, 0)
    wanted = np.tile(np.arange(half) % 2 == 0, 2)[None, :].repeat(n, 0)     # yes, no, yes, no ... per type
    query = np.zeros((n, queries), dtype=np.int64)
    for j in range(queries):
        t, yes = int(qtype[0, j]), bool(wanted[0, j])
        pick = _pick(pools[(t, int(yes))], rng)
        if t == 1 and not yes:     # hard negatives for half the rows that have one
            hard = _pick(pools["hard"], rng)
            use = (rng.random(n) < 0.5) & (hard >= 0)
            pick = np.where(use, hard, pick)
        if (pick < 0).any():       # e.g. every token present: ask about the opposite case instead
            other = _pick(pools[(t, int(not yes))], rng)
            pick = np.where(pick < 0, other, pick)
        query[:, j] = pick
    answer = np.where(qtype == 0, np.take_along_axis(seen, query, 1), np.take_along_axis(pairs, query, 1))
    return TokenQueries(tokens.astype(np.int64), query, qtype.astype(np.int64), answer.astype(np.int64), int(vocab))


# --------------------------------------------------------------------------- sequence reversal
def reversal_task(n: int, *, vocab: int = 16, length: int = 16, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples of "read L tokens, then write them backwards": inputs (n, 2 L + 1) int64 are the tokens
    x_1..x_L (uniform over ``vocab``), a separator (token ``vocab``) and L blanks (token ``vocab + 1``); the
    targets (n, L) are x_L..x_1, one per blank. A model answers at the blanks, after it has read the whole
    input, so a left-to-right recurrent net is not short of information, only of memory. The output at blank j
    must come from input position L - 1 - j: without positions a model cannot tell the blanks apart."""
    if int(vocab) < 2:
        raise UserError(f"the reversal task needs a vocabulary of at least 2 tokens, got {vocab}")
    if int(length) < 2:
        raise UserError(f"the reversal task needs sequences of at least 2 tokens, got length {length}")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, (n, length))
    tokens = np.concatenate([x, np.full((n, 1), vocab), np.full((n, length), vocab + 1)], 1).astype(np.int64)
    return tokens, np.ascontiguousarray(x[:, ::-1]).astype(np.int64)
