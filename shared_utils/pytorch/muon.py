"""Muon for convolution filters: momentum whose update is orthogonalised before it is applied (Jordan et al.
2024; the optimizer of airbench94_muon, the successor of benchmarks/cifar_anchor.py's recipe).

For a weight W of shape (out, ...) the Nesterov momentum update M is seen as an (out, rest) matrix and replaced
by an approximation of U V^T, where M = U S V^T: every direction the update moves in gets the same step size,
so the few directions a raw gradient is dominated by no longer crowd out the rest. U V^T comes from a quintic
Newton-Schulz iteration, X <- a X + (b A + c A^2) X with A = X X^T, started from M / ||M||_F. Its coefficients
(3.4445, -4.775, 2.0315; torch.optim.Muon's too) trade exact convergence for speed: measured on matrices whose
singular values span five decades, five steps bring those within a factor of 100 of the largest into
[0.72, 1.20] and three steps (airbench94_muon's) those within a factor of 10 into [0.80, 1.20]; the smallest
directions grow but stay behind (tests/shared_utils/test_muon.py). torch.optim.Muon takes 2-D weights only;
this one takes any weight with two or more dimensions, which is what a convolution's (out, in, kh, kw) is.

Groups with ``orthogonalize=False`` take plain SGD steps (Nesterov momentum, coupled weight decay, as
torch.optim.SGD), so one optimizer, and one learning-rate schedule, drives a whole network:

    filters = [p for p in model.parameters() if p.ndim == 4 and p.requires_grad]
    rest = [p for p in model.parameters() if p.ndim != 4 and p.requires_grad]
    opt = Muon([{"params": filters, "lr": 0.24, "momentum": 0.6},
                {"params": rest, "lr": 0.05, "momentum": 0.85, "orthogonalize": False, "weight_decay": 5e-4}])

``normalize_weights`` (on by default, as in airbench94_muon) rescales each orthogonalised weight to a Frobenius
norm of sqrt(out) before its step, so its size, not only its direction, stays fixed: weight decay has nothing
to do there and the step size is relative.
"""
from __future__ import annotations

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(matrix: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """An approximation of U V^T for ``matrix`` = U S V^T (2-D), by ``steps`` quintic Newton-Schulz iterations in
    float32 (bfloat16 on CUDA, where it is exact enough and faster)."""
    if matrix.ndim != 2:
        raise ValueError(f"orthogonalize takes a matrix, got shape {tuple(matrix.shape)}")
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(torch.bfloat16 if matrix.is_cuda else torch.float32)
    x = x / (x.norm() + eps)                 # every singular value <= 1, where the iteration is stable
    tall = x.shape[0] > x.shape[1]
    if tall:                                 # iterate on the smaller Gram matrix
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Orthogonalised Nesterov momentum for the groups with ``orthogonalize=True`` (the default), SGD for the
    others; see the module docstring."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.6, nesterov: bool = True, ns_steps: int = 5,
                 normalize_weights: bool = True, orthogonalize: bool = True, weight_decay: float = 0.0):
        if lr < 0 or not 0 <= momentum < 1 or ns_steps < 1 or weight_decay < 0:
            raise ValueError(f"lr {lr} >= 0, momentum {momentum} in [0, 1), ns_steps {ns_steps} >= 1 and "
                             f"weight_decay {weight_decay} >= 0 are required")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps,
                                      normalize_weights=normalize_weights, orthogonalize=orthogonalize,
                                      weight_decay=weight_decay))
        for group in self.param_groups:
            if group["orthogonalize"]:
                flat = [tuple(p.shape) for p in group["params"] if p.ndim < 2]
                if flat:
                    raise ValueError(f"Muon orthogonalises weights of 2 or more dimensions; put the shapes {flat} "
                                     "in a group with orthogonalize=False")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] and not group["orthogonalize"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(momentum).add_(grad)
                update = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
                if group["orthogonalize"]:
                    if group["normalize_weights"]:
                        p.mul_(len(p) ** 0.5 / (p.norm() + 1e-12))
                    update = orthogonalize(update.reshape(len(update), -1), group["ns_steps"]).view_as(p)
                p.add_(update, alpha=-lr)
        return loss
