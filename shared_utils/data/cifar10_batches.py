"""CIFAR-10 from its pickled batches, read by an unpickler that admits only arrays (no code runs)."""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from shared_utils.data.core import Split
from shared_utils.data.fetch import _offline_error, download, file_digest
from shared_utils.errors import UserError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """The CIFAR batches are pickles; allow only what they hold (dicts, lists, str, bytes, arrays)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how protocol-2 pickles written by Python 3 store bytes

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch -> uint8 (N, 3, 32, 32) images and int64 labels, structure checked."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # truncated or foreign files fail in many ways inside pickle
        raise UserError(f"{path} is not a readable CIFAR batch ({type(exc).__name__}); "
                        "delete it and download again") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a CIFAR batch (no dict inside); delete it and download again")
    obj = {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}
    images, labels = obj.get("data"), obj.get("labels")
    if not isinstance(images, np.ndarray) or labels is None:
        raise UserError(f"{path} lacks 'data' or 'labels'; delete it and download again")
    labels = np.asarray(labels, dtype=np.int64)
    if (images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072
            or len(labels) != len(images) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9):
        raise UserError(f"{path} has the wrong shape or labels for CIFAR-10; delete it and download again")
    return images.reshape(-1, 3, 32, 32), labels


def load_arrays(data_dir: Path, *, download_ok: bool = True, quiet: bool = False):
    folder = data_dir / "cifar-10-batches-py"
    missing = [b for b in CIFAR10_BATCHES if not (folder / b).exists()]
    if missing:
        if not download_ok:
            raise _offline_error("CIFAR-10", folder, CIFAR10_BATCHES, "downloads disabled")
        archive = data_dir / "cifar-10-python.tar.gz"
        try:
            if not archive.exists():
                download([CIFAR10_URL], archive, md5=CIFAR10_MD5, quiet=quiet)
        except OSError as exc:
            raise _offline_error("CIFAR-10", folder, CIFAR10_BATCHES, str(exc)) from None
        if file_digest(archive, "md5") != CIFAR10_MD5:
            raise UserError(f"{archive} fails its md5 check; delete it and run again")
        with tarfile.open(archive) as tar:
            tar.extractall(data_dir, filter="data")
    parts = [read_cifar_batch(folder / b) for b in CIFAR10_BATCHES]
    train = Split(np.concatenate([p[0] for p in parts[:5]]), np.concatenate([p[1] for p in parts[:5]]))
    test = Split(parts[5][0], parts[5][1])
    return train, test, list(CIFAR10_CLASSES), CIFAR10_MEAN, CIFAR10_STD
