"""The convolutional family of the architecture search: two conv layers whose channels are solved for a
parameter budget (budgets.cnn_channels)."""
from __future__ import annotations

import torch
import torch.nn as nn

from shared_utils.pytorch.models import ACTIVATIONS


class TwoConvCNN(nn.Module):
    """Two 3x3 'same' convolutions (c1, c2 channels), each followed by ReLU and a 2x2 max pool, then one
    linear layer: the small CNN family whose channels projects/mnist_architecture_search solves for a
    parameter budget."""

    def __init__(self, c1: int = 8, c2: int = 16, classes: int = 10, side: int = 28, in_channels: int = 1,
                 activation: str = "relu"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.features = nn.Sequential(nn.Conv2d(in_channels, c1, 3, padding=1), act(), nn.MaxPool2d(2),
                                      nn.Conv2d(c1, c2, 3, padding=1), act(), nn.MaxPool2d(2))
        self.classifier = nn.Linear((side // 4) ** 2 * c2, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))
