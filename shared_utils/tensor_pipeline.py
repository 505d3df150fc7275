"""A fast in-memory image pipeline for PyTorch: the whole dataset is one uint8 tensor on the
training device, and each batch is gathered, augmented and normalised with whole-batch tensor
operations. No worker processes, no per-image Python: on a CPU the input pipeline costs a few
percent of a training step, and on a GPU it never leaves the device.

    loader = TensorLoader(ds.train.x, ds.train.y, batch_size=128, mean=ds.mean, std=ds.std,
                          augment=[random_crop(4), horizontal_flip()], device=device, seed=0)
    for x, y in loader: ...          # x float32 (B, 3, 32, 32) normalised, y int64 (B,)

Every augmentation is a callable ``(batch float in [0, 1], generator) -> batch`` drawing its
randomness per image from the loader's seeded ``torch.Generator``, so runs repeat exactly.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def random_crop(padding: int = 4) -> Augment:
    """Zero-pad by ``padding`` and cut a random HxW window per image (one gather, no loop)."""
    def apply(x, gen):
        n, c, h, w = x.shape
        padded = F.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen, device=x.device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]          # (N, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]          # (N, 1, 1, W)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        return padded[batch, chan, rows, cols]
    apply.__name__ = f"random_crop({padding})"
    return apply


def horizontal_flip(p: float = 0.5) -> Augment:
    def apply(x, gen):
        flip = torch.rand(x.shape[0], generator=gen, device=x.device) < p
        return torch.where(flip[:, None, None, None], x.flip(3), x)
    apply.__name__ = "horizontal_flip"
    return apply


def color_jitter(brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4) -> Augment:
    """Per-image random brightness, contrast and saturation factors in [1 - s, 1 + s]."""
    def apply(x, gen):
        n = x.shape[0]
        b = _uniform(n, 1 - brightness, 1 + brightness, gen, x.device)[:, None, None, None]
        c = _uniform(n, 1 - contrast, 1 + contrast, gen, x.device)[:, None, None, None]
        s = _uniform(n, 1 - saturation, 1 + saturation, gen, x.device)[:, None, None, None]
        x = x * b
        grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        x = (x - grey.mean(dim=(2, 3), keepdim=True)) * c + grey.mean(dim=(2, 3), keepdim=True)
        grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        return ((x - grey) * s + grey).clamp(0, 1)
    apply.__name__ = "color_jitter"
    return apply


def rotation(degrees: float = 15.0) -> Augment:
    """Per-image rotation by a random angle in [-degrees, degrees] (bilinear, zero fill)."""
    def apply(x, gen):
        n = x.shape[0]
        angle = _uniform(n, -degrees, degrees, gen, x.device) * math.pi / 180
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    apply.__name__ = f"rotation({degrees:g})"
    return apply


def cutout(size: int = 8, p: float = 1.0) -> Augment:
    """Erase one size x size square per image (DeVries & Taylor 2017), with probability p. Its centre is
    uniform over the image, so near a border part of the square falls outside and fewer pixels go."""
    def apply(x, gen):
        n, _, h, w = x.shape
        cy = torch.randint(0, h, (n,), generator=gen, device=x.device)[:, None, None]
        cx = torch.randint(0, w, (n,), generator=gen, device=x.device)[:, None, None]
        ys = torch.arange(h, device=x.device)[None, :, None] - cy + size // 2   # 0..size-1 inside the square
        xs = torch.arange(w, device=x.device)[None, None, :] - cx + size // 2
        inside = (ys >= 0) & (ys < size) & (xs >= 0) & (xs < size)
        inside &= (torch.rand(n, generator=gen, device=x.device) < p)[:, None, None]
        return x.masked_fill(inside[:, None], 0.0)
    apply.__name__ = f"cutout({size})"
    return apply


def rand_augment(num_ops: int = 2, magnitude: int = 9, chunk: int = 16) -> Augment:
    """torchvision's RandAugment policy. It draws one operation per call, so the batch is cut into
    chunks of ``chunk`` images that each get their own draw (seeded from the loader's generator)."""
    from torchvision.transforms import v2

    policy = v2.RandAugment(num_ops=num_ops, magnitude=magnitude)

    def apply(x, gen):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen).item())
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)   # torchvision draws from the global generator: pin it, then restore
        try:
            as_uint8 = (x * 255).round().to(torch.uint8)
            parts = [policy(part) for part in as_uint8.split(chunk)]
        finally:
            torch.random.set_rng_state(state)
        return torch.cat(parts).to(x.dtype) / 255
    apply.__name__ = f"rand_augment({num_ops}, {magnitude})"
    return apply


AUGMENTATIONS: dict[str, Callable[[], Augment]] = {
    "flip": horizontal_flip,
    "crop": random_crop,
    "color": color_jitter,
    "rotation": rotation,
    "cutout": cutout,
    "randaugment": rand_augment,
}


class TensorLoader:
    """Batches from uint8 (N, C, H, W) images kept on ``device``; iterate once per epoch."""

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, *, batch_size: int,
                 mean: Sequence[float], std: Sequence[float], augment: Sequence[Augment] = (), shuffle: bool = True,
                 device: torch.device | str = "cpu", seed: int = 0, drop_last: bool = False):
        self.images = torch.as_tensor(images).to(device)
        self.labels = torch.as_tensor(labels).to(device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augment = list(augment)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index].float().div_(255)
        for aug in self.augment:
            x = aug(x, self.generator)
        return (x - self.mean) / self.std, self.labels[index]

    def __iter__(self):
        n = len(self.labels)
        order = (torch.randperm(n, generator=self.generator, device=self.device) if self.shuffle
                 else torch.arange(n, device=self.device))
        for i in range(len(self)):
            yield self.batch(order[i * self.batch_size:(i + 1) * self.batch_size])
