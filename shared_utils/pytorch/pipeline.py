"""A fast in-memory input pipeline for PyTorch: the whole dataset is one tensor on the training
device, and each batch is gathered, transformed and normalised with whole-batch tensor operations.
No worker processes, no per-example Python: on a CPU the input pipeline costs a few percent of a
training step, and on a GPU it never leaves the device.

    loader = TensorLoader(ds.train.x, ds.train.y, batch_size=128, mean=ds.mean, std=ds.std,
                          augment=[random_crop(4), horizontal_flip()], device=device, seed=0)
    for x, y in loader: ...          # x float32 (B, 3, 32, 32) normalised, y int64 (B,)

Three kinds of transform, all drawing their randomness from the loader's seeded
``torch.Generator`` so runs repeat exactly:
- an image augmentation ``(x, gen) -> x`` on a float batch in [0, 1] (flip, crop, cutout ...);
- a labelled transform ``(x, y, gen) -> (x, y)``, marked with :func:`labelled`, which may change or
  make the targets: mixup and cutmix (soft labels), rotation prediction (the label becomes the
  rotation), reconstruction (the target becomes the clean input);
- an indexed augmentation ``(x, index, epoch, gen) -> x``, marked ``takes_index``, which also sees the
  images' dataset indices and the epoch (:func:`alternating_flip`).

uint8 inputs are scaled to [0, 1]; any other dtype (sequences, features) is used as it is. Under
``torchrun`` each rank gets its slice of every global batch (see :mod:`.distributed`). Also here:
:func:`torch_dataset` / :func:`torch_loader`, a ``Dataset``/``DataLoader`` view of a NumPy dataset.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from shared_utils.pytorch import distributed

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
LabelledTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def labelled(transform: LabelledTransform) -> LabelledTransform:
    """Mark ``transform(x, y, gen) -> (x, y)`` as one that sees (and may change) the targets."""
    transform.takes_labels = True
    return transform


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def random_crop(padding: int = 4, mode: str = "constant") -> Augment:
    """Pad by ``padding`` (zeros, or ``mode="reflect"``: the mirrored border, so no black edges) and cut a
    random HxW window per image (one gather, no loop): a random translation by up to ``padding`` pixels."""
    def apply(x, gen):
        n, c, h, w = x.shape
        padded = F.pad(x, (padding,) * 4, mode=mode)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen, device=x.device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]          # (N, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]          # (N, 1, 1, W)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        return padded[batch, chan, rows, cols]
    apply.__name__ = f"random_crop({padding})" if mode == "constant" else f"random_crop({padding}, {mode})"
    return apply


def horizontal_flip(p: float = 0.5) -> Augment:
    def apply(x, gen):
        flip = torch.rand(x.shape[0], generator=gen, device=x.device) < p
        return torch.where(flip[:, None, None, None], x.flip(3), x)
    apply.__name__ = "horizontal_flip"
    return apply


def alternating_flip(seed: int = 0):
    """Mirror each training image on every other epoch instead of by a fresh coin each time (Jordan 2024,
    "alternating flip"): in epoch e image i is flipped iff bit(i) XOR (e odd), where bit(i) is a fixed
    pseudo-random bit of the image's index. Over any two consecutive epochs every image is seen once each
    way, which random flips only give on average. Stateless, so resuming repeats it exactly; it needs the
    images' indices and the epoch, which :class:`TensorLoader` passes to transforms marked ``takes_index``."""
    def apply(x, index, epoch, gen):
        mixed = (index.to(torch.int64) * 2654435761 + 97 * (seed + 1)) % 4294967296   # Knuth's multiplicative hash
        flip = ((mixed >> 16) & 1).bool() ^ bool(epoch % 2)
        return torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
    apply.takes_index = True
    apply.__name__ = "alternating_flip"
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


def resize(size: int) -> Augment:
    """Bilinear resize of the batch to ``size`` x ``size`` (a no-op when it is that size already): feeds
    32x32 images to a network at another resolution, for training and evaluation alike."""
    def apply(x, gen):
        if x.shape[-2:] == (size, size):
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    apply.__name__ = f"resize({size})"
    return apply


AUGMENTATIONS: dict[str, Callable[[], Augment]] = {
    "flip": horizontal_flip,
    "altflip": alternating_flip,
    "crop": random_crop,
    "translate": lambda: random_crop(2, mode="reflect"),
    "color": color_jitter,
    "rotation": rotation,
    "cutout": cutout,
    "randaugment": rand_augment,
}


# --------------------------------------------------------------------------- labelled transforms
def _one_hot(y: torch.Tensor, classes: int) -> torch.Tensor:
    return y if y.is_floating_point() else F.one_hot(y, classes).float()


def mixup(alpha: float = 0.2, classes: int = 10) -> LabelledTransform:
    """Zhang et al. 2018: each image becomes ``lam * x + (1 - lam) * x[perm]`` and its target the same mix
    of one-hot labels; one ``lam ~ Beta(alpha, alpha)`` per batch, as in the paper."""
    def apply(x, y, gen):
        lam = _beta(alpha, gen)
        perm = torch.randperm(x.shape[0], generator=gen, device=x.device)
        target = _one_hot(y, classes)
        return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]
    apply.__name__ = f"mixup({alpha:g})"
    return labelled(apply)


def cutmix(alpha: float = 1.0, classes: int = 10) -> LabelledTransform:
    """Yun et al. 2019: paste a random box from a shuffled partner image; the target mixes the two
    labels by the pasted area."""
    def apply(x, y, gen):
        n, _, h, w = x.shape
        lam = _beta(alpha, gen)
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy = int(torch.randint(0, h, (1,), generator=gen, device=x.device))
        cx = int(torch.randint(0, w, (1,), generator=gen, device=x.device))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
        perm = torch.randperm(n, generator=gen, device=x.device)
        mixed = x.clone()
        mixed[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
        kept = 1 - (y1 - y0) * (x1 - x0) / (h * w)      # the share of each image that is still its own
        target = _one_hot(y, classes)
        return mixed, kept * target + (1 - kept) * target[perm]
    apply.__name__ = f"cutmix({alpha:g})"
    return labelled(apply)


def _beta(alpha: float, gen: torch.Generator) -> float:
    """One Beta(alpha, alpha) draw from the loader's seeded generator (torch's Beta sampler cannot take a
    generator). Johnk's algorithm: exact for any alpha > 0, a few uniform pairs on average."""
    while True:
        u, v = torch.rand(2, generator=gen, device=gen.device).tolist()
        a, b = u ** (1 / alpha), v ** (1 / alpha)
        if 0 < a + b <= 1:
            return a / (a + b)


def rotate_quarters(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Image i of the (N, C, H, W) batch ``x`` turned by ``k[i]`` x 90 degrees anticlockwise (square
    images), one rot90 per distinct k rather than per image; ``rotate_quarters(y, -k)`` undoes it exactly."""
    out = torch.empty_like(x)
    k = k.remainder(4)
    for r in range(4):
        mask = k == r
        if mask.any():
            out[mask] = torch.rot90(x[mask], r, dims=(2, 3))
    return out


def all_rotations(x: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of ``x`` at 0, 90, 180 and 270 degrees, with labels 0..3: a fixed evaluation set for
    the rotation task (the four copies of image i at rows i, N + i, 2N + i, 3N + i)."""
    x = torch.as_tensor(x)
    turned = torch.cat([torch.rot90(x, r, dims=(2, 3)) for r in range(4)])
    return turned, torch.arange(4).repeat_interleave(len(x))


def rotation_prediction() -> LabelledTransform:
    """Gidaris et al. 2018's proxy task: rotate each image by k x 90 degrees (k uniform in 0..3) and
    make k its label, so a network learns features by predicting how its input was turned."""
    def apply(x, y, gen):
        k = torch.randint(0, 4, (x.shape[0],), generator=gen, device=x.device)
        return rotate_quarters(x, k), k
    apply.__name__ = "rotation_prediction"
    return labelled(apply)


def reconstruction() -> LabelledTransform:
    """The target becomes the input itself (for autoencoders), after any augmentation before it, on the
    [0, 1] pixel scale: the loader normalises the input it feeds the network, never the target."""
    def apply(x, y, gen):
        return x, x
    apply.__name__ = "reconstruction"
    return labelled(apply)


LABELLED_TRANSFORMS: dict[str, Callable[..., LabelledTransform]] = {
    "mixup": mixup, "cutmix": cutmix, "rotation_prediction": rotation_prediction,
}


# --------------------------------------------------------------------------- the loader
def loaders(ds, *, batch_size: int, seed: int, device: torch.device | str = "cpu", eval_batch_size: int = 1000,
            augment: Sequence[Callable] = (), eval_augment: Sequence[Callable] = (), normalise: bool = True,
            train=None, drop_last: bool = False, **kw) -> tuple["TensorLoader", "TensorLoader | None", "TensorLoader"]:
    """The (train, validation, test) loaders of a Dataset: training batches shuffled by ``seed`` and
    augmented, the held-out splits in order (``None`` for a dataset without validation images), all
    normalised by the dataset's mean and std unless ``normalise=False``. ``train`` replaces the training
    split (a labelled subset), ``drop_last`` drops its last short batch; ``eval_augment`` are transforms every split needs (a resize, a target change)."""
    norm = dict(mean=ds.mean, std=ds.std) if normalise else {}
    train = ds.train if train is None else train
    held_out = dict(batch_size=eval_batch_size, shuffle=False, device=device, **norm, **kw)
    return (TensorLoader(train.x, train.y, batch_size=batch_size, seed=seed, device=device,
                         augment=[*augment, *eval_augment], drop_last=drop_last, **norm, **kw),
            None if ds.val is None else TensorLoader(ds.val.x, ds.val.y, augment=list(eval_augment), **held_out),
            TensorLoader(ds.test.x, ds.test.y, augment=list(eval_augment), **held_out))


class TensorLoader:
    """Batches from (N, ...) inputs and targets kept on ``device``; iterate once per epoch.

    ``augment`` holds image augmentations and labelled transforms, applied in order to each batch
    before normalisation by ``mean``/``std`` (per channel, on the [0, 1] scale; omit both for data
    that needs none). Under torchrun each rank yields its own slice of every global batch of
    ``batch_size``, so one optimizer step sees the same examples as a single process would.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, *, batch_size: int,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 augment: Sequence[Callable] = (), shuffle: bool = True, device: torch.device | str = "cpu",
                 seed: int = 0, drop_last: bool = False, shard: bool = True):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} inputs but {len(labels)} targets")
        self.images = torch.as_tensor(images).to(device)
        self.labels = torch.as_tensor(labels).to(device)
        # a batch larger than the data is the whole data (a typo such as --batch-size 1000000000 allocates nothing)
        self.batch_size, self.shuffle, self.drop_last = max(1, min(int(batch_size), len(labels))), shuffle, drop_last
        self.augment = list(augment)
        shape = (1, -1) + (1,) * (self.images.dim() - 2)
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32, device=device).view(shape)
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.shard = shard
        self.epoch = 0      # passes begun so far: what transforms marked takes_index see as their epoch

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.epoch = int(state.get("epoch", 0))

    def batch(self, index: torch.Tensor, epoch: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index]
        x = x.float().div_(255) if x.dtype == torch.uint8 else x
        y = self.labels[index]
        for transform in self.augment:
            if getattr(transform, "takes_index", False):
                x = transform(x, index, epoch, self.generator)
            elif getattr(transform, "takes_labels", False):
                x, y = transform(x, y, self.generator)
            else:
                x = transform(x, self.generator)
        if self.mean is not None:
            x = (x - self.mean) / self.std      # targets are never normalised
        return x, y

    def __iter__(self):
        n = len(self.labels)
        order = (torch.randperm(n, generator=self.generator, device=self.device) if self.shuffle
                 else torch.arange(n, device=self.device))
        sharded = self.shard and distributed.world_size() > 1
        epoch, self.epoch = self.epoch, self.epoch + 1
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            if sharded:   # every rank drew the same permutation; each keeps its part of the global batch
                index = index[distributed.shard(0, len(index))]
            yield self.batch(index, epoch)


class FreshLoader:
    """Batches of synthetic data drawn anew every epoch: ``draw(n, seed)`` returns (inputs, targets) arrays of
    n examples, called with the seed ``[seed, epoch]``. A model trained this way never sees an example twice,
    so it cannot memorise and must learn the rule; the epoch counter is the loader's state, so a resumed run
    (the engine checkpoints ``state_dict()``) draws exactly what an uninterrupted one would."""

    def __init__(self, draw: Callable[[int, list], tuple], size: int, *, batch_size: int, seed: int = 0,
                 device: torch.device | str = "cpu"):
        self.draw, self.size, self.seed = draw, int(size), int(seed)
        self.batch_size = max(1, min(int(batch_size), self.size))   # never more than an epoch's examples
        self.device = torch.device(device)
        self.epoch = 0
        self.augment: list = []

    def __len__(self) -> int:
        return max(1, self.size // self.batch_size)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])

    def __iter__(self):
        x, y = self.draw(len(self) * self.batch_size, [self.seed, self.epoch])
        self.epoch += 1
        x, y = torch.as_tensor(x).to(self.device), torch.as_tensor(y).to(self.device)
        sharded = distributed.world_size() > 1
        for i in range(len(self)):
            index = torch.arange(i * self.batch_size, (i + 1) * self.batch_size, device=self.device)
            if sharded:   # each rank keeps its part of the global batch, as TensorLoader does
                index = index[distributed.shard(0, len(index))]
            yield x[index], y[index]


class TokenBatches:
    """Batches of token sequences padded at the end with ``pad`` (an (N, T) int array, as a tokenizer returns
    them), each batch cut to its longest sequence. With ``shuffle`` the examples are permuted every epoch and,
    within each run of ``bucket`` batches, grouped by length, so little compute goes to padding; the
    generator is the loader's state, so a resumed run draws the same batches as an uninterrupted one."""

    def __init__(self, tokens: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, *, batch_size: int,
                 pad: int = 0, shuffle: bool = True, seed: int = 0, bucket: int = 50,
                 device: torch.device | str = "cpu"):
        if len(tokens) != len(labels):
            raise ValueError(f"{len(tokens)} sequences but {len(labels)} targets")
        self.tokens, self.labels = torch.as_tensor(tokens), torch.as_tensor(labels)
        self.lengths = (self.tokens != pad).sum(1)
        self.batch_size = max(1, min(int(batch_size), len(self.labels)))
        self.shuffle, self.bucket = shuffle, max(1, int(bucket))
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def _batches(self) -> list[torch.Tensor]:
        n, b = len(self.labels), self.batch_size
        if not self.shuffle:
            return [torch.arange(i, min(i + b, n)) for i in range(0, n, b)]
        order = torch.randperm(n, generator=self.generator)
        span = b * self.bucket
        batches = []
        for start in range(0, n, span):
            chunk = order[start:start + span]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches += [chunk[i:i + b] for i in range(0, len(chunk), b)]
        return [batches[i] for i in torch.randperm(len(batches), generator=self.generator).tolist()]

    def __iter__(self):
        for index in self._batches():
            width = max(1, int(self.lengths[index].max()))
            yield self.tokens[index, :width].to(self.device), self.labels[index].to(self.device)


# --------------------------------------------------------------------------- Dataset / DataLoader view
def torch_dataset(ds, split: str = "train"):
    """A ``TensorDataset`` of normalised float32 images and int64 labels of a ``shared_utils.data.Dataset``."""
    from torch.utils.data import TensorDataset

    from shared_utils.errors import UserError

    part = getattr(ds, split)
    if part is None:
        raise UserError(f"{ds.name} has no {split} split here: too few training examples to set a validation set aside; raise --limit-train (or drop it)")
    return TensorDataset(torch.from_numpy(ds.normalize(part.x)), torch.from_numpy(part.y))


def torch_loader(ds, split: str = "train", *, batch_size: int = 64, shuffle: bool | None = None, seed: int = 0):
    """A ``DataLoader`` over :func:`torch_dataset`, shuffled (seeded) for the train split by default."""
    from torch.utils.data import DataLoader

    shuffle = split == "train" if shuffle is None else shuffle
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(torch_dataset(ds, split), batch_size=batch_size, shuffle=shuffle, generator=generator)
