"""Fixed-size summaries of token sequences, for part B of projects/sequence_models: the learned summary
(an encoder to d numbers and a query head that sees only those numbers and the token asked about), the
Bloom filter it is compared with (Bloom 1970), linear probes of what a summary holds, and 8-bit quantisation.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


ENCODERS = ("RNN", "CNN", "attention")


# --------------------------------------------------------------------------- the learned summary
class SequenceEncoder(nn.Module):
    """Tokens (N, L) -> a summary (N, d).

    RNN        a GRU over the token embeddings; its last state, through a linear map to d
    CNN        a per-token layer (kernel 1) and a 1-D convolution over neighbours (kernel 3), each with ReLU; each
               layer's channels maxed over the positions (tokens, then local patterns such as pairs), both
               layers' maxima through a linear map to d
    attention  embeddings plus learned positions, one self-attention layer, then attention pooling: 4 learned
               queries attend over the positions; their outputs, concatenated, through a linear map to d
    """

    def __init__(self, kind: str, vocab: int, d: int, max_len: int, embed: int = 32, width: int = 128):
        super().__init__()
        if kind not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {kind!r}")
        self.kind = kind
        self.embed = nn.Embedding(vocab, embed)
        if kind == "RNN":
            self.rnn = nn.GRU(embed, width, batch_first=True)
            self.proj = nn.Linear(width, d)
        elif kind == "CNN":
            self.conv1 = nn.Conv1d(embed, width, 1)
            self.conv2 = nn.Conv1d(width, width, 3, padding=1)
            self.proj = nn.Linear(2 * width, d)
        else:
            dim, heads = 64, 4
            self.inp = nn.Linear(embed, dim)
            self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
            self.layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True)
            self.queries = nn.Parameter(torch.randn(4, dim) * 0.02)
            self.pool = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.proj = nn.Linear(4 * dim, d)

    def forward(self, tokens):
        e = self.embed(tokens)
        if self.kind == "RNN":
            _, h = self.rnn(e)
            return self.proj(h[-1])
        if self.kind == "CNN":
            h1 = F.relu(self.conv1(e.transpose(1, 2)))
            h2 = F.relu(self.conv2(h1))
            return self.proj(torch.cat([h1.amax(2), h2.amax(2)], 1))
        h = self.layer(self.inp(e) + self.pos[: tokens.shape[1]])
        q = self.queries.unsqueeze(0).expand(len(tokens), -1, -1)
        pooled, _ = self.pool(q, h, h, need_weights=False)
        return self.proj(pooled.flatten(1))


class QueryHead(nn.Module):
    """Answers a query from the summary alone. An MLP (two hidden layers) reads the summary and writes one
    "key" vector per query type; the logit is its dot product with an embedding of X, plus a bias per (type, X):
    a multiplicative read-out, which an MLP on the concatenation [summary, X] approximates poorly (it plateaued
    at chance in our first runs)."""

    def __init__(self, vocab: int, d: int, embed: int = 256, hidden: int = 256):
        super().__init__()
        self.embed = embed
        self.token = nn.Embedding(vocab, embed)
        self.bias = nn.Embedding(2 * vocab, 1)
        self.vocab = vocab
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * embed))

    def forward(self, summary, query, qtype):
        keys = self.net(summary).view(-1, 2, self.embed)                 # (N, 2 types, embed)
        key = keys[torch.arange(len(keys), device=keys.device), qtype]  # the asked type's key
        return (key * self.token(query)).sum(1) + self.bias(qtype * self.vocab + query).squeeze(1)


class SummaryQA(nn.Module):
    """Encoder and query head trained jointly. Input: the packed (N, L + 2 q) int64 rows of
    ``TokenQueries.packed()`` (tokens, q tokens X, q query types); output: (N, q) logits, every answer read
    from the sequence's one summary. ``quantizer`` (set after training) rounds the summary to 8 bits per
    number before the head reads it."""

    def __init__(self, kind: str, vocab: int, d: int, max_len: int, queries: int = 8):
        super().__init__()
        self.encoder = SequenceEncoder(kind, vocab, d, max_len)
        self.head = QueryHead(vocab, d)
        self.queries = queries
        self.quantizer: Quantizer | None = None

    def summarize(self, tokens):
        return self.encoder(tokens)

    def forward(self, packed):
        q = self.queries
        tokens, query, qtype = packed[:, :-2 * q], packed[:, -2 * q:-q], packed[:, -q:]
        z = self.encoder(tokens)
        if self.quantizer is not None:
            z = self.quantizer(z)
        n = len(z)
        logits = self.head(z.repeat_interleave(q, 0), query.reshape(-1), qtype.reshape(-1))
        return logits.view(n, q)


class Quantizer(nn.Module):
    """Uniform quantisation of each summary number to ``bits`` bits between its minimum and maximum over a
    reference set (values outside are clipped): the summary then costs ``bits * d`` bits."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor, bits: int = 8):
        super().__init__()
        self.register_buffer("low", low.detach().clone())
        self.register_buffer("span", (high - low).detach().clamp_min(1e-8))
        self.levels = 2 ** bits - 1

    def codes(self, z):
        return torch.round(((z - self.low) / self.span).clamp(0, 1) * self.levels)

    def forward(self, z):
        return self.low + self.codes(z) / self.levels * self.span


# --------------------------------------------------------------------------- Bloom filters
MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a well-mixed 64-bit hash of each integer (Steele, Lea & Flood 2014)."""
    with np.errstate(over="ignore"):
        z = (np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)) & MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & MASK64
        return z ^ (z >> np.uint64(31))


def bloom_positions(keys: np.ndarray, m: int, k: int, salt: int = 0) -> np.ndarray:
    """The k bit positions of each key (..., k), from k independent hashes: the first k outputs of a splitmix64
    generator seeded with the key's own hash, each taken mod m. ``salt`` picks another hash function of the family.

    Not double hashing (h1 + i h2 mod m, Kirsch & Mitzenmacher 2006): two keys that share (h1, h2) mod m share all k
    bits, and keys whose progressions overlap share many, which at m <= 512 and the k this study uses put the
    false-positive rate 1.2x to 1000x above that of independent hashes (tests/projects/test_sequence_models_memory.py).
    """
    with np.errstate(over="ignore"):
        seed = splitmix64(np.asarray(keys, dtype=np.uint64) ^ splitmix64(np.uint64(salt)))
        steps = np.arange(k, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)   # splitmix64's own increment
        return (splitmix64(seed[..., None] + steps) % np.uint64(m)).astype(np.int64)


def bloom_build(items: np.ndarray, valid: np.ndarray, m: int, k: int, salt: int = 0) -> np.ndarray:
    """(n, m) booleans: row i has the bits of its items (n, q) where ``valid`` is set."""
    pos = bloom_positions(items, m, k, salt)           # (n, q, k)
    bits = np.zeros((len(items), m), dtype=bool)
    rows = np.broadcast_to(np.arange(len(items))[:, None, None], pos.shape)
    keep = np.broadcast_to(valid[..., None], pos.shape)
    bits[rows[keep], pos[keep]] = True
    return bits


def bloom_query(bits: np.ndarray, keys: np.ndarray, k: int, salt: int = 0) -> np.ndarray:
    """Whether each row's filter answers "present" for its keys (n,) or (n, q): all k bits set."""
    keys = np.asarray(keys)
    pos = bloom_positions(keys, bits.shape[1], k, salt)   # (n, [q,] k)
    rows = np.arange(len(keys)).reshape((-1,) + (1,) * (pos.ndim - 1))
    return bits[rows, pos].all(-1)


def bloom_false_positive_rate(n: float, m: int, k: int) -> float:
    """The classic approximation (1 - e^(-k n / m))^k (Bloom 1970); it runs below the exact rate at small m."""
    return (1.0 - math.exp(-k * n / m)) ** k


def bloom_false_positive_exact(n: int, m: int, k: int) -> float:
    """The exact false-positive rate of an m-bit filter of n keys with k independent uniform hashes: E[(X/m)^k],
    X the bits set by the n k throws, its law computed throw by throw (Bose et al. 2008)."""
    occupied = np.arange(m + 1)
    p = np.zeros(m + 1)
    p[0] = 1.0
    for _ in range(int(n) * k):
        stay, move = p * occupied / m, p * (m - occupied) / m
        p = stay
        p[1:] += move[:-1]
    return float(p @ (occupied / m) ** k)


def optimal_hashes(n: float, m: int) -> int:
    """k = (m / n) ln 2, the count that minimises the false-positive rate, rounded, at least 1."""
    return max(1, int(round(m / max(n, 1e-9) * math.log(2))))


def token_key(x):
    return np.asarray(x, dtype=np.int64)


def bigram_key(a, b, vocab: int):
    return vocab + np.asarray(a, dtype=np.int64) * vocab + np.asarray(b, dtype=np.int64)


def bloom_items(tokens: np.ndarray, vocab: int, bigrams: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Keys to insert per sequence and which are valid: every token, plus every adjacent pair ("all"), or only
    the pairs (X, X+1) the queries can ask about ("successor")."""
    pairs = bigram_key(tokens[:, :-1], tokens[:, 1:], vocab)
    valid_pairs = np.ones(pairs.shape, dtype=bool) if bigrams == "all" else tokens[:, 1:] == tokens[:, :-1] + 1
    items = np.concatenate([token_key(tokens), pairs], 1)
    valid = np.concatenate([np.ones(tokens.shape, dtype=bool), valid_pairs], 1)
    return items, valid


def distinct_items(tokens: np.ndarray, vocab: int, bigrams: str = "all") -> float:
    """Mean number of distinct keys a sequence inserts (the n of the false-positive formula)."""
    items, valid = bloom_items(tokens, vocab, bigrams)
    return float(np.mean([len(np.unique(row[v])) for row, v in zip(items, valid)]))


def bloom_accuracy(train_tokens: np.ndarray, tokens: np.ndarray, query: np.ndarray, qtype: np.ndarray,
                   answer: np.ndarray, vocab: int, m: int, bigrams: str = "all", hash_seeds: int = 1) -> dict:
    """Accuracy of an m-bit Bloom filter per sequence on its queries (n, q), for each of ``hash_seeds`` hash
    functions (a filter's errors depend on which one it drew: about a point at k = 1 here); k is chosen for the
    mean number of distinct items of the training sequences."""
    n_items = distinct_items(train_tokens[:2000], vocab, bigrams)
    k = optimal_hashes(n_items, m)
    items, valid = bloom_items(tokens, vocab, bigrams)
    keys = np.where(qtype == 0, token_key(query), bigram_key(query, query + 1, vocab))
    accs = [float((bloom_query(bloom_build(items, valid, m, k, salt), keys, k, salt) == answer.astype(bool)).mean())
            for salt in range(hash_seeds)]
    return {"acc": float(np.mean(accs)), "acc_per_hash": accs, "k": k, "items": n_items,
            "predicted_fp": bloom_false_positive_rate(n_items, m, k)}


# --------------------------------------------------------------------------- probes
def ridge_r2(z_train, y_train, z_test, y_test, lam: float = 1e-2) -> float:
    """R^2 on held-out rows of a ridge regression from the summary to each target column, averaged over
    columns (each column standardised by its training mean and spread)."""
    z_train, z_test = np.asarray(z_train, np.float64), np.asarray(z_test, np.float64)
    mu, sd = z_train.mean(0), z_train.std(0) + 1e-8
    a = np.c_[(z_train - mu) / sd, np.ones(len(z_train))]
    b = np.c_[(z_test - mu) / sd, np.ones(len(z_test))]
    w = np.linalg.solve(a.T @ a + lam * len(a) * np.eye(a.shape[1]), a.T @ y_train)
    pred = b @ w
    resid = ((y_test - pred) ** 2).sum(0)
    total = ((y_test - y_train.mean(0)) ** 2).sum(0)
    return float(np.mean(1.0 - resid / np.maximum(total, 1e-12)))


def probe_targets(tokens: np.ndarray, vocab: int, probed: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Counts (n, len(probed)) of each probed token, and per probed token the rows where it occurs exactly
    once with its position there."""
    counts = np.stack([(tokens == x).sum(1) for x in probed], 1).astype(np.float64)
    positions = []
    for j, x in enumerate(probed):
        rows = np.nonzero(counts[:, j] == 1)[0]
        positions.append((rows, (tokens[rows] == x).argmax(1).astype(np.float64)))
    return counts, positions


def probe(z: np.ndarray, tokens: np.ndarray, vocab: int, probed: np.ndarray, split: float = 0.8) -> dict:
    """Held-out R^2 of linear probes for the count of each probed token and, where it occurs once, its
    position (one probe per token, averaged)."""
    counts, positions = probe_targets(tokens, vocab, probed)
    cut = int(split * len(z))
    count_r2 = ridge_r2(z[:cut], counts[:cut], z[cut:], counts[cut:])
    pos_r2 = []
    for rows, pos in positions:
        train, test = rows[rows < cut], rows[rows >= cut]
        if len(train) > z.shape[1] + 5 and len(test) > 5:
            pos_r2.append(ridge_r2(z[train], pos[rows < cut][:, None], z[test], pos[rows >= cut][:, None]))
    return {"count_r2": count_r2, "position_r2": float(np.mean(pos_r2)) if pos_r2 else float("nan")}

