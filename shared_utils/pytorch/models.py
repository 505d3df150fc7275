"""The shared model zoo: an MLP baseline, a small CNN, PlainNet-n / ResNet-n as in He et al. 2016
(section 4.2: 3 stages of 2n 3x3 layers, widths 16/32/64, 6n+2 layers), a wide ResNet (WRN-d-k),
FastNet (a compact network that trains in few epochs) and torchvision's ResNet-18, adapted to 32x32
inputs or kept at ImageNet size: the models two or more studies use. A model only one study uses lives in
that study's package (projects/<name>/models.py), and moves here when a second study needs it.

    model = build_model("resnet", depth=20)     # 0.27M parameters, the paper's ResNet-20
    model = build_model("plain", depth=56)      # the same layers without shortcuts
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

CIFAR_CLASSES = 10


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


class MLP(nn.Module):
    """Flattened inputs through hidden layers (ReLU by default): the baseline with no notion of space.
    Each hidden layer is Linear, then BatchNorm1d when ``batchnorm`` (the "modern MLP"), the activation and
    Dropout when ``dropout`` > 0."""

    def __init__(self, hidden: tuple[int, ...] = (512, 256), classes: int = CIFAR_CLASSES, dropout: float = 0.0,
                 in_features: int = 3 * 32 * 32, activation: str = "relu", batchnorm: bool = False):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        layers, width = [nn.Flatten()], in_features
        for h in hidden:
            layers += ([nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batchnorm else []) + [ACTIVATIONS[activation]()]
                       + ([nn.Dropout(dropout)] if dropout else []))
            width = h
        layers.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class SmallCNN(nn.Module):
    """Two conv blocks (32 and 64 channels, each conv-conv-pool) and a classifier; optional
    batch normalisation and dropout for the regularisation study."""

    def __init__(self, classes: int = CIFAR_CLASSES, batchnorm: bool = False, dropout: float = 0.0,
                 width: int = 32):
        super().__init__()

        def conv(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=not batchnorm)] + \
                   ([nn.BatchNorm2d(cout)] if batchnorm else []) + [nn.ReLU(inplace=True)]

        w = width
        self.features = nn.Sequential(*conv(3, w), *conv(w, w), nn.MaxPool2d(2),
                                      *conv(w, 2 * w), *conv(2 * w, 2 * w), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), *([nn.Dropout(dropout)] if dropout else []),
                                        nn.Linear(2 * w * 8 * 8, 256), nn.ReLU(inplace=True),
                                        *([nn.Dropout(dropout)] if dropout else []), nn.Linear(256, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def width_for_budget(build, budget: int, low: int = 1, high: int = 4096) -> int:
    """The width w whose ``build(w)`` has the parameter count closest to ``budget`` (counts grow with w):
    how a fair comparison gives every architecture the same number of weights."""
    def count(width: int) -> int:        # built on the meta device: shapes only, no memory, no initialisation
        with torch.device("meta"):
            return count_parameters(build(width))

    best, best_gap = low, None
    lo, hi = low, high
    while lo <= hi:                      # binary search for the last width at or under the budget
        mid = (lo + hi) // 2
        if count(mid) <= budget:
            lo = mid + 1
        else:
            hi = mid - 1
    for w in (max(low, hi), min(high, hi + 1)):
        gap = abs(count(w) - budget)
        if best_gap is None or gap < best_gap:
            best, best_gap = w, gap
    return best


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers. With ``residual`` the input is added back before the last ReLU,
    through the paper's parameter-free option A shortcut (subsample, zero-pad the new channels)."""

    def __init__(self, cin: int, cout: int, stride: int, residual: bool):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.subsample = stride != 1
        self.pad_channels = cout - cin

    def shortcut(self, x):
        if self.subsample:
            x = x[:, :, ::2, ::2]
        if self.pad_channels:
            x = F.pad(x, (0, 0, 0, 0, self.pad_channels // 2, self.pad_channels - self.pad_channels // 2))
        return x

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + self.shortcut(x)
        return F.relu(out)


class CifarNet(nn.Module):
    """ResNet-n (``residual=True``) or PlainNet-n (False) for 32x32 images, n = 6k + 2 layers."""

    def __init__(self, depth: int = 20, residual: bool = True, classes: int = CIFAR_CLASSES):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6k + 2 (20, 32, 44, 56, 110, ...), got {depth}")
        blocks = (depth - 2) // 6
        self.depth, self.residual = depth, residual
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        stages, cin = [], 16
        for i, cout in enumerate((16, 32, 64)):
            for b in range(blocks):
                stages.append(BasicBlock(cin, cout, stride=2 if (i > 0 and b == 0) else 1, residual=residual))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class WideBlock(nn.Module):
    """A pre-activation residual block (BN-ReLU-conv twice) with a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.project = (nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
                        if stride != 1 or cin != cout else None)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = x if self.project is None else self.project(out)
        out = self.conv1(out)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-d-k (Zagoruyko & Komodakis 2016): three stages of (d - 4) / 6 pre-activation blocks of widths
    16k, 32k, 64k. WRN-16-4 has 2.7M parameters."""

    def __init__(self, depth: int = 16, widen: int = 4, classes: int = CIFAR_CLASSES, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6k + 4 (10, 16, 22, 28, ...), got {depth}")
        blocks = (depth - 4) // 6
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        layers, cin = [], 16
        for i, width in enumerate((16 * widen, 32 * widen, 64 * widen)):
            for b in range(blocks):
                layers.append(WideBlock(cin, width, stride=2 if (i > 0 and b == 0) else 1, dropout=dropout))
                cin = width
        self.stages = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn(self.stages(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class FastNet(nn.Module):
    """A compact network built to train in few epochs: a fixed patch-whitening stem, then three stages of
    conv3x3 -> max pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU (``widths``), a global max pool and a
    linear layer whose logits are scaled by ``logit_scale``.

    The shape follows the fast-training family of Page (2018) and Jordan (2024): pooling right after the
    first convolution of a stage keeps most of the compute at low resolution, and the whitening stem
    (:meth:`init_whitening`: the 2x2 patches' covariance eigenvectors, scaled to unit variance, each with
    its negation so a ReLU-like unit sees both signs) starts the network with decorrelated inputs instead
    of learning that first. Without whitening the stem is an ordinary trainable 3x3 convolution.
    ``bn_momentum`` is PyTorch's (the weight of the new batch); ``bn_weight=False`` fixes every BN scale
    at 1 and trains only the shifts.

    The published airbench94 network (benchmarks/cifar_anchor.py) is this one with ``stem_gelu=True`` (a GELU
    after the whitening stem), ``dirac=True`` (each 3x3 convolution's first C_in filters start as the identity,
    an implicit residual), ``bn_eps=1e-12``, ``bn_momentum=0.4``, ``bn_weight=False`` and the stem whitened from
    uncentred patches (``init_whitening(..., centre=False)``)."""

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), classes: int = CIFAR_CLASSES, *,
                 whiten: bool = True, logit_scale: float = 1 / 9, bn_momentum: float = 0.1, bn_weight: bool = True,
                 bn_eps: float = 1e-5, stem_gelu: bool = False, dirac: bool = False):
        super().__init__()
        self.whiten = whiten
        stem_width = 24 if whiten else widths[0] // 2
        self.stem = (nn.Conv2d(3, stem_width, 2, bias=True) if whiten else
                     nn.Sequential(nn.Conv2d(3, stem_width, 3, padding=1, bias=False), nn.BatchNorm2d(stem_width),
                                   nn.GELU()))
        if whiten:
            self.stem.weight.requires_grad_(False)
            self.stem.bias.requires_grad_(False)
        self.stem_act = nn.GELU() if whiten and stem_gelu else nn.Identity()

        def bn(width):
            norm = nn.BatchNorm2d(width, momentum=bn_momentum, eps=bn_eps)
            if not bn_weight:
                norm.weight.requires_grad_(False)
            return norm

        def conv(cin, cout):
            layer = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            if dirac:
                with torch.no_grad():
                    nn.init.dirac_(layer.weight[:min(cin, cout)])
            return layer

        stages, cin = [], stem_width
        for width in widths:
            stages.append(nn.Sequential(conv(cin, width), nn.MaxPool2d(2), bn(width),
                                        nn.GELU(), conv(width, width), bn(width), nn.GELU()))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, classes, bias=False)
        self.logit_scale = logit_scale

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4, centre: bool = True) -> None:
        """Set the stem from (N, 3, H, W) normalised training images: for each eigenvector v (eigenvalue l)
        of the 2x2 patches' covariance, filters v / sqrt(l + eps) and -v / sqrt(l + eps); the bias centres
        the patches' mean at 0. ``centre=False`` (airbench94's way) takes the patches' second moment instead
        of their covariance and leaves the bias at 0."""
        if not self.whiten:
            return
        patches = F.unfold(images.float(), 2).transpose(1, 2).reshape(-1, 12).double()   # (N * 31 * 31, 12)
        mean = patches.mean(0) if centre else torch.zeros(12, dtype=patches.dtype)
        centred = patches - mean
        cov = centred.T @ centred / len(centred)
        values, vectors = torch.linalg.eigh(cov)
        filters = (vectors / torch.sqrt(values + eps)).T.flip(0)          # largest variance first
        weight = torch.cat([filters, -filters]).float().reshape(24, 3, 2, 2)
        self.stem.weight.copy_(weight)
        self.stem.bias.copy_(-(weight.reshape(24, 12) @ mean.float()))

    def forward(self, x):
        x = self.stages(self.stem_act(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_max_pool2d(x, 1), 1)) * self.logit_scale


def resnet18(classes: int = CIFAR_CLASSES, *, cifar_stem: bool = True, weights=None) -> nn.Module:
    """torchvision's ResNet-18. ``cifar_stem`` swaps the 7x7/2 stem and max pool for a 3x3/1 conv
    so 32x32 inputs keep their resolution; with ImageNet-size inputs keep the original stem."""
    import torchvision

    model = torchvision.models.resnet18(weights=weights)
    if cifar_stem:
        model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.fc = nn.Linear(model.fc.in_features, classes)
    return model


MODELS = {
    "mlp": lambda **kw: MLP(**kw),
    "cnn": lambda **kw: SmallCNN(**kw),
    "resnet": lambda depth=20, **kw: CifarNet(depth, residual=True, **kw),
    "plain": lambda depth=20, **kw: CifarNet(depth, residual=False, **kw),
    "resnet18": lambda **kw: resnet18(**kw),
    "wrn": lambda depth=16, widen=4, **kw: WideResNet(depth, widen, **kw),
    "fastnet": lambda **kw: FastNet(**kw),
}


def build_model(name: str, **kwargs) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def load_pretrained(model: nn.Module, weights: str, *, skip_prefixes: tuple[str, ...] = ("fc.",)) -> dict:
    """Load backbone weights into a torchvision-style ResNet-18 (the head is left as built).

    ``weights`` is ``"imagenet"`` (torchvision's ImageNet-1k weights: from the torch hub cache, else
    downloaded) or the path of a saved state dict (a plain one, or a checkpoint with a ``"model"``
    entry, loaded with ``weights_only=True``). Returns the keys that were not loaded.
    """
    from shared_utils.errors import UserError
    from shared_utils.pytorch.checkpoint import load_torch

    if weights == "imagenet":
        import torchvision

        import contextlib
        import io

        spec = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
        try:
            # torch.hub announces each download on stdout; keep the one-line error clean
            with contextlib.redirect_stdout(io.StringIO()):
                state = spec.get_state_dict(progress=False)
        except Exception as exc:  # offline: URLError / OSError from the hub download
            cache = torch.hub.get_dir()
            raise UserError(f"ImageNet weights for ResNet-18 are not in the torch hub cache ({cache}) and could not "
                            f"be downloaded ({type(exc).__name__}); pass --weights PATH to a saved state dict, "
                            "or --weights none to train from scratch") from None
    else:
        state = load_torch(weights)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        if not isinstance(state, dict):
            raise UserError(f"{weights} does not hold a state dict")
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if not k.startswith(skip_prefixes) and k in own}
    wrong = [k for k, v in usable.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise UserError(f"{weights}: shapes do not fit this ResNet-18 for {len(wrong)} tensors (first: {wrong[0]} "
                        f"{tuple(usable[wrong[0]].shape)} vs {tuple(own[wrong[0]].shape)})")
    if not usable:
        raise UserError(f"{weights}: none of its tensors belong to a ResNet-18 (is it the right file?)")
    result = model.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "missing": list(result.missing_keys)}


def freeze_backbone(model: nn.Module, head: str = "fc") -> nn.Module:
    """Stop gradients everywhere except the head, and fix the backbone's BatchNorm layers: each becomes
    torchvision's FrozenBatchNorm2d with the same statistics and affine weights, which always normalises
    with its running statistics, so a frozen feature extractor does not drift with the new data's batch
    statistics in train mode. No method is patched: the model saves, copies and switches modes as usual."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(head + ".")
    for name, module in list(model.named_modules()):       # the root too: ResNet's stem bn1 is its child
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if full == head or full.startswith(head + "."):
                continue
            if isinstance(child, nn.BatchNorm2d):
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                with torch.no_grad():
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
                    frozen.running_mean.copy_(child.running_mean)
                    frozen.running_var.copy_(child.running_var)
                setattr(module, child_name, frozen.to(child.weight.device))
    return model
