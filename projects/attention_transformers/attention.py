"""Attention and the transformer encoder written from tensor operations, for projects/attention_transformers.

Nothing here calls torch's attention or transformer modules; tests/projects/test_attention_from_scratch.py
proves each piece equal to them (float64, masks included) and checks the gradients numerically.

    out, weights = scaled_dot_product_attention(q, k, v, mask=keep, causal=True)
    mha = MultiHeadAttention(dim=64, heads=4)              # same parameter layout as nn.MultiheadAttention
    block = EncoderBlock(dim=64, heads=4, hidden=128)      # pre-LN: x + MHA(LN(x)), then x + FFN(LN(x))

Masks follow one convention throughout: a boolean ``keep`` tensor, True where a query may attend to a key.
``key_padding`` marks padded positions (True = padding), as in nn.MultiheadAttention.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                                 mask: torch.Tensor | None = None, causal: bool = False
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v over the last two axes (..., L, d) x (..., S, d) -> (..., L, d_v).

    ``mask`` (broadcastable to (..., L, S), boolean) keeps the True entries; ``causal`` also hides every key after
    its query (key index > query index). Returns the output and the attention weights. A query whose keys are all
    hidden gets zero weights (and a zero output) rather than NaN."""
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    keep = None
    if mask is not None:
        keep = mask.bool()
    if causal:
        L, S = q.shape[-2], k.shape[-2]
        lower = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
        keep = lower if keep is None else keep & lower
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    peak = scores.amax(-1, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    exp = torch.exp(scores - peak)                  # stable: the row maximum is subtracted first
    total = exp.sum(-1, keepdim=True)
    weights = exp / torch.where(total > 0, total, torch.ones_like(total))
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017): project to queries, keys and values, split into ``heads``,
    attend in each, concatenate, project out. The parameters are laid out as nn.MultiheadAttention's
    (``in_proj_weight`` (3 dim, dim), ``in_proj_bias``, ``out_proj``), so its weights load either way."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _split(self, x):                         # (N, L, dim) -> (N, heads, L, dim / heads)
        n, length, _ = x.shape
        return x.view(n, length, self.heads, self.dim // self.heads).transpose(1, 2)

    def forward(self, query, key=None, value=None, *, key_padding: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, causal: bool = False):
        """(N, L, dim) inputs (batch first); ``key`` and ``value`` default to ``query`` (self-attention).
        Returns the output (N, L, dim) and the weights per head (N, heads, L, S)."""
        key = query if key is None else key
        value = key if value is None else value
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)
        q = self._split(query @ wq.T + bq)
        k = self._split(key @ wk.T + bk)
        v = self._split(value @ wv.T + bv)
        keep = None if mask is None else mask.bool()
        if key_padding is not None:                    # (N, S), True = padding -> (N, 1, 1, S) keep
            pad_keep = ~key_padding.bool()[:, None, None, :]
            keep = pad_keep if keep is None else keep & pad_keep
        out, weights = scaled_dot_product_attention(q, k, v, mask=keep, causal=causal)
        n, _, length, _ = out.shape
        out = out.transpose(1, 2).reshape(n, length, self.dim)
        return self.out_proj(out), weights


def sinusoidal_encoding(length: int, dim: int, dtype=torch.float32) -> torch.Tensor:
    """The fixed encodings of Vaswani et al.: PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(...)."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    rate = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * rate)
    pe[:, 1::2] = torch.cos(position * rate)[:, : dim // 2]
    return pe.to(dtype)


class PositionalEncoding(nn.Module):
    """Adds position information to (N, L, dim) embeddings: ``kind`` "sinusoidal" (fixed), "learned" (a trained
    table, Gehring et al. 2017 / BERT) or "none" (the model then sees a set, not a sequence)."""

    KINDS = ("sinusoidal", "learned", "none")

    def __init__(self, kind: str, max_len: int, dim: int):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"positional encoding must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        if kind == "sinusoidal":
            self.register_buffer("table", sinusoidal_encoding(max_len, dim))
        elif kind == "learned":
            self.table = nn.Parameter(torch.randn(max_len, dim) * 0.02)

    def forward(self, x):
        if self.kind == "none":
            return x
        if x.shape[1] > self.table.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} positions, but the encoding covers {self.table.shape[0]}")
        return x + self.table[: x.shape[1]].to(x.dtype)


class LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance, as nn.LayerNorm)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class EncoderBlock(nn.Module):
    """A pre-LN transformer encoder block (Xiong et al. 2020): x + MHA(LN1(x)), then x + FFN(LN2(x)) with
    FFN = Linear(dim, hidden) -> ReLU -> Linear(hidden, dim). No dropout, so it is deterministic."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1, self.norm2 = LayerNorm(dim), LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.ff1, self.ff2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.last_weights: torch.Tensor | None = None     # the attention weights of the last forward pass

    def forward(self, x, *, key_padding=None, causal: bool = False):
        h = self.norm1(x)
        attended, weights = self.attn(h, key_padding=key_padding, causal=causal)
        self.last_weights = weights.detach()
        x = x + attended
        return x + self.ff2(torch.relu(self.ff1(self.norm2(x))))


class TransformerEncoder(nn.Module):
    """Token embeddings, positions (``positions``: sinusoidal, learned or none), ``layers`` pre-LN blocks and a
    final LayerNorm: (N, L) token ids -> (N, L, dim). ``attention_maps()`` returns each block's last weights."""

    def __init__(self, vocab: int, dim: int = 64, heads: int = 4, hidden: int = 128, layers: int = 2,
                 max_len: int = 512, positions: str = "sinusoidal"):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.positions = PositionalEncoding(positions, max_len, dim)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, hidden) for _ in range(layers))
        self.norm = LayerNorm(dim)

    def forward(self, tokens, *, key_padding=None, causal: bool = False):
        x = self.positions(self.embed(tokens))
        for block in self.blocks:
            x = block(x, key_padding=key_padding, causal=causal)
        return self.norm(x)

    def attention_maps(self) -> list[torch.Tensor]:
        return [b.last_weights for b in self.blocks]


class ReadOut(nn.Module):
    """A sequence model's states (N, L, dim) -> class logits, read at the last position ("last") or averaged
    ("mean"), through one linear layer. Wraps any encoder mapping (N, L) tokens to (N, L, dim)."""

    def __init__(self, encoder: nn.Module, dim: int, classes: int, pool: str = "last"):
        super().__init__()
        if pool not in ("last", "mean"):
            raise ValueError(f"pool must be last or mean, got {pool!r}")
        self.encoder, self.pool = encoder, pool
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens):
        h = self.encoder(tokens)
        return self.head(h[:, -1] if self.pool == "last" else h.mean(1))


class LSTMEncoder(nn.Module):
    """Embeddings through a one-layer LSTM: (N, L) -> (N, L, dim)."""

    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, dim, batch_first=True)

    def forward(self, tokens):
        return self.lstm(self.embed(tokens))[0]


class BagEncoder(nn.Module):
    """The order-blind baseline: each token's embedding through a per-token MLP, every position given the mean
    over the sequence (so "last" and "mean" read the same bag): (N, L) -> (N, L, dim)."""

    def __init__(self, vocab: int, dim: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, tokens):
        bag = self.mlp(self.embed(tokens)).mean(1, keepdim=True)
        return bag.expand(-1, tokens.shape[1], -1)
