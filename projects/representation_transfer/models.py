"""The networks of the representation-transfer studies: MLP and convolutional autoencoders (part A), the
encoder-plus-linear-head classifier (part B), and the four-block CNN and the probe head of the rotation
studies (parts C and D)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from shared_utils.pytorch.models import CIFAR_CLASSES


class MLPAutoencoder(nn.Module):
    """Flattened image -> hidden layers -> a ``code`` of k numbers -> mirrored layers -> image in [0, 1]
    (sigmoid). ``encoder`` and ``decoder`` are separate modules so a classifier can reuse the encoder."""

    def __init__(self, code: int, hidden: tuple[int, ...] = (512, 256), side: int = 28, channels: int = 1):
        super().__init__()
        pixels = channels * side * side
        widths = [pixels, *hidden]
        enc: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.ReLU()]
        self.encoder = nn.Sequential(*enc, nn.Linear(widths[-1], code))      # a linear code, as in PCA
        dec: list[nn.Module] = []
        back = [code, *reversed(hidden)]
        for a, b in zip(back[:-1], back[1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.decoder = nn.Sequential(*dec, nn.Linear(back[-1], pixels), nn.Sigmoid(),
                                     nn.Unflatten(1, (channels, side, side)))

    def forward(self, x):
        return self.decoder(self.encoder(x))


class ConvAutoencoder(nn.Module):
    """Two stride-2 3x3 convolutions (28 -> 14 -> 7) and a linear layer to a ``code`` of k numbers; the
    decoder mirrors it with transposed convolutions back to a [0, 1] image."""

    def __init__(self, code: int, width: int = 32, side: int = 28, channels: int = 1):
        super().__init__()
        if side % 4:
            raise ValueError(f"side must be a multiple of 4, got {side}")
        small, w = side // 4, width
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * w * small * small, code))
        self.decoder = nn.Sequential(
            nn.Linear(code, 2 * w * small * small), nn.ReLU(), nn.Unflatten(1, (2 * w, small, small)),
            nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(w, channels, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


class EncoderClassifier(nn.Module):
    """An autoencoder's ``encoder`` (any module mapping an input to ``code`` numbers) and a linear ``head``
    to the classes: the classifier that reuses a learned representation, frozen or fine-tuned."""

    def __init__(self, encoder: nn.Module, code: int, classes: int = 10):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(code, classes)

    def forward(self, x):
        return self.head(self.encoder(x))


class BlockCNN(nn.Module):
    """``blocks`` conv blocks, each two 3x3 conv-BN-ReLU layers (``width`` channels in the first block,
    doubling per block; every block but the last ends in a 2x2 max pool), then a global average pool and a
    linear ``fc``: a RotNet-style backbone (Gidaris et al. 2018) whose first k blocks a transfer study reuses.
    ``features(x, k)`` is the output of block k (1-based)."""

    def __init__(self, classes: int = CIFAR_CLASSES, width: int = 32, blocks: int = 4, in_channels: int = 3):
        super().__init__()
        if blocks < 1:
            raise ValueError(f"blocks must be at least 1, got {blocks}")
        layers, cin = [], in_channels
        for i in range(blocks):
            cout = width * 2 ** i
            block = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                     nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if i < blocks - 1:
                block.append(nn.MaxPool2d(2))
            layers.append(nn.Sequential(*block))
            cin = cout
        self.blocks = nn.ModuleList(layers)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x, k: int):
        if not 1 <= k <= len(self.blocks):
            raise ValueError(f"k must be in 1..{len(self.blocks)}, got {k}")
        for block in self.blocks[:k]:
            x = block(x)
        return x

    def forward(self, x):
        x = self.features(x, len(self.blocks))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ProbeHead(nn.Module):
    """The non-linear classifier of frozen features in Gidaris et al. 2018: flattened features through
    ``layers`` - 1 hidden fully connected layers (``hidden`` units, batch norm, ReLU) and a linear output."""

    def __init__(self, in_features: int, classes: int = CIFAR_CLASSES, hidden: int = 200, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
            width = hidden
        mods.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x.float())
