"""Losses as functions returning ``(loss, dloss/dprediction)``, each averaged over the batch.

Same definitions as torch.nn.functional's cross_entropy (with label_smoothing),
binary_cross_entropy_with_logits and mse_loss with reduction="mean".
"""
from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp never overflows
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray, *,
                          label_smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """logits (N, K), int labels (N,) -> mean cross-entropy and its gradient (N, K).

    With smoothing ``s`` the target is ``(1 - s) * one_hot + s / K``, as in PyTorch.
    """
    n, k = logits.shape
    log_probs = log_softmax(logits)
    rows = np.arange(n)
    nll = -log_probs[rows, labels]
    if label_smoothing:
        loss = (1 - label_smoothing) * nll.mean() - label_smoothing * log_probs.mean(axis=1).mean()
    else:
        loss = nll.mean()
    grad = np.exp(log_probs)                     # softmax
    grad[rows, labels] -= 1.0 - label_smoothing
    if label_smoothing:
        grad -= label_smoothing / k
    return float(loss), grad / n


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy on raw scores, stable for any |logit|: max(z,0) - z*y + log(1+e^-|z|)."""
    targets = targets.astype(logits.dtype).reshape(logits.shape)
    loss = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    from section2_optimization.layers import sigmoid

    return float(loss.mean()), (sigmoid(logits) - targets) / logits.size


def mse(predictions: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every element, and its gradient."""
    diff = predictions - targets.astype(predictions.dtype).reshape(predictions.shape)
    return float((diff ** 2).mean()), 2.0 * diff / diff.size


LOSSES = {"cross_entropy": softmax_cross_entropy, "bce": bce_with_logits, "mse": mse}


def sigmoid_mse(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """MSE between sigmoid(logits) and 0/1 targets (a sigmoid output unit trained with MSE),
    with the gradient taken all the way back to the logits."""
    from section2_optimization.layers import sigmoid

    probs = sigmoid(logits)
    loss, grad_probs = mse(probs, targets)
    return loss, grad_probs * probs * (1 - probs)


LOSSES["sigmoid_mse"] = sigmoid_mse
