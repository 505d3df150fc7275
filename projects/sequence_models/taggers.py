"""Per-step sequence taggers of the change-point study: recurrent (RNN, LSTM, GRU) and a causal dilated
convolution (TCN), each mapping (batch, T) values to (batch, T) logits."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


class RecurrentTagger(nn.Module):
    """A one-layer RNN (tanh), LSTM or GRU read left to right, with a linear read-out at every step: a causal
    sequence tagger. Input (N, T) or (N, T, F); output (N, T, outputs), squeezed to (N, T) for one output."""

    CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(self, cell: str = "lstm", hidden: int = 32, in_features: int = 1, outputs: int = 1):
        super().__init__()
        if cell not in self.CELLS:
            raise ValueError(f"cell must be one of {sorted(self.CELLS)}, got {cell!r}")
        self.rnn = self.CELLS[cell](in_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x):
        x = x.float()
        h, _ = self.rnn(x.unsqueeze(-1) if x.dim() == 2 else x)
        out = self.head(h)
        return out.squeeze(-1) if out.shape[-1] == 1 else out


class CausalTCN(nn.Module):
    """A temporal convolutional network (Bai, Kolter & Koltun 2018): a 1x1 input projection, residual layers of
    causal dilated convolutions (kernel ``kernel``, dilations 1, 2, 4, ...: each step sees only itself and the
    past, over a receptive field of 1 + (kernel - 1)(2^layers - 1) steps) and a 1x1 read-out at every step.
    Input (N, T) or (N, T, F); output as :class:`RecurrentTagger`."""

    def __init__(self, channels: int = 24, layers: int = 7, kernel: int = 3, in_features: int = 1, outputs: int = 1):
        super().__init__()
        self.inp = nn.Conv1d(in_features, channels, 1)
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=2 ** i) for i in range(layers))
        self.out = nn.Conv1d(channels, outputs, 1)
        self.kernel = kernel

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel - 1) * sum(c.dilation[0] for c in self.convs)

    def forward(self, x):
        x = x.float()
        h = self.inp((x.unsqueeze(-1) if x.dim() == 2 else x).transpose(1, 2))
        for conv in self.convs:
            pad = conv.dilation[0] * (self.kernel - 1)
            h = h + F.relu(conv(F.pad(h, (pad, 0))))      # left padding only: causal
        out = self.out(h).transpose(1, 2)
        return out.squeeze(-1) if out.shape[-1] == 1 else out


SEQUENCE_TAGGERS = ("rnn", "lstm", "gru", "tcn")


def sequence_tagger(name: str, width: int, **kwargs) -> nn.Module:
    return CausalTCN(width, **kwargs) if name == "tcn" else RecurrentTagger(name, width, **kwargs)
