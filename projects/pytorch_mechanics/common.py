"""What the mechanics scripts share: MNIST with a validation split, and its in-memory loaders."""
from __future__ import annotations

from shared_utils import data
from shared_utils.pytorch.pipeline import TensorLoader

VAL_SIZE = 5000


def mnist(args) -> data.Dataset:
    """MNIST as the common flags ask: --limit-train trims the training images (the validation images come
    out of them: a sixth, at most 5,000); the full 10,000 test images unless the preset limits them."""
    limit = args.limit_train
    return data.mnist(args.data_dir, limit=limit, limit_test=getattr(args, "limit_test", None), subset_mode="random",
                      val_size=min(VAL_SIZE, (limit or 60000) // 6), seed=args.seed, quiet=args.quiet)


def loaders(ds: data.Dataset, batch_size: int, seed: int, device, normalise: bool = True):
    """(train, val, test) loaders on ``device``; the training order follows ``seed``. ``normalise=False``
    keeps pixels in [0, 1] (non-negative inputs, as the dying-ReLU experiment needs)."""
    kw = dict(mean=ds.mean, std=ds.std) if normalise else {}
    train = TensorLoader(ds.train.x, ds.train.y, batch_size=batch_size, seed=seed, device=device, **kw)
    val = TensorLoader(ds.val.x, ds.val.y, batch_size=1000, shuffle=False, device=device, **kw)
    test = TensorLoader(ds.test.x, ds.test.y, batch_size=1000, shuffle=False, device=device, **kw)
    return train, val, test
