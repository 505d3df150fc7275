"""Real datasets as NumPy arrays, plus the seeded synthetic tasks several sections need.

    ds = data.load("mnist", args.data_dir, limit=args.limit_train, val_size=5000, seed=args.seed)
    x = ds.normalize(ds.train.x)        # float32 (N, 1, 28, 28), zero mean / unit std per channel
    ds.train.y                          # int64 (N,)

Images are uint8 in (N, C, H, W) layout; labels are int64. Where the files live:
``--data-dir``, else ``$DL_DATA_DIR``, else ``./data``. Missing files are downloaded
from the official mirrors and checked against their published checksums; offline,
a :class:`UserError` names the folder and the files expected. Files already on disk
are verified too (checksums for MNIST, structure for CIFAR-10), so a truncated or
corrupt file is reported, never silently used.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from shared_utils.errors import UserError

ENV_VAR = "DL_DATA_DIR"


# --------------------------------------------------------------------------- containers
@dataclass
class Split:
    """One split: ``x`` (uint8 images or float32 features) and ``y`` (int64 labels)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index) -> "Split":
        return Split(self.x[index], self.y[index])


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    val: Split | None = None
    classes: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = ()   # per channel, on the [0, 1] pixel scale
    std: tuple[float, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalize(self, x: np.ndarray, dtype=np.float32) -> np.ndarray:
        """uint8 (N, C, H, W) -> ``dtype`` with the dataset's per-channel mean and std removed."""
        scale = np.asarray(1.0 / 255.0, dtype=dtype)
        mean = np.asarray(self.mean, dtype=dtype).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=dtype).reshape(1, -1, 1, 1)
        return (x.astype(dtype) * scale - mean) / std

    def arrays(self, split: str = "train", *, flatten: bool = False, dtype=np.float32):
        """``(x, y)`` of a split, normalised; ``flatten`` gives (N, C*H*W) rows for MLPs."""
        part = getattr(self, split)
        if part is None:
            raise UserError(f"{self.name} has no {split} split here; ask load() for val_size > 0")
        x = self.normalize(part.x, dtype)
        return (x.reshape(len(x), -1) if flatten else x), part.y


# --------------------------------------------------------------------------- locations
def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``--data-dir`` if given, else ``$DL_DATA_DIR``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path("data")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(urls: Sequence[str], dest: Path, *, md5: str, quiet: bool = False) -> None:
    """Fetch the first mirror that answers into ``dest``, verifying its md5; atomic.

    Raises ``OSError`` (network) or ``UserError`` (checksum) when nothing usable arrived.
    """
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        tmp = dest.with_name(dest.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                          disable=quiet, leave=False) as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
            got = file_digest(tmp, "md5")
            if got != md5:
                raise UserError(f"{url} arrived with md5 {got}, expected {md5}; try again later")
            os.replace(tmp, dest)
            return
        except (OSError, UserError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if tmp.exists():
                tmp.unlink()
    raise OSError("; ".join(errors))


def _offline_error(name: str, folder: Path, files: Sequence[str], reason: str) -> UserError:
    return UserError(
        f"{name} not found in {folder} and the download failed ({reason.splitlines()[0][:120]}); "
        f"put {', '.join(files)} there, or point --data-dir / ${ENV_VAR} at a folder that has them")


# --------------------------------------------------------------------------- MNIST
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
# name: (sha256 of the uncompressed IDX file, md5 of the official .gz)
MNIST_FILES = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                                "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                                "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                               "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                               "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes, source: str = "IDX data") -> np.ndarray:
    """Decode an IDX file (LeCun's format: zero, zero, dtype code, ndim, big-endian dims, data)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UserError(f"{source} is not an IDX file (bad magic number); delete it and download again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{source} is truncated (header); delete it and download again")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise UserError(f"{source} has {len(raw)} bytes, its header promises {expected}: "
                        "truncated or corrupt; delete it and download again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _mnist_file(folder: Path, name: str, *, download_ok: bool, quiet: bool,
                checksums: dict = MNIST_FILES) -> bytes:
    """Bytes of one MNIST IDX file from ``name`` or ``name.gz``, checked; downloaded if absent."""
    sha256, md5 = checksums[name]
    raw_path, gz_path = folder / name, folder / (name + ".gz")
    if not raw_path.exists() and not gz_path.exists():
        if not download_ok:
            raise _offline_error("MNIST", folder, list(checksums), "downloads disabled")
        try:
            download([m + name + ".gz" for m in MNIST_MIRRORS], gz_path, md5=md5, quiet=quiet)
        except OSError as exc:
            raise _offline_error("MNIST", folder, list(checksums), str(exc)) from None
    if raw_path.exists():
        data = raw_path.read_bytes()
        where = raw_path
    else:
        if file_digest(gz_path, "md5") != md5:
            raise UserError(f"{gz_path} fails its md5 check (truncated or corrupt); delete it and run again")
        try:
            data = gzip.decompress(gz_path.read_bytes())
        except (OSError, EOFError) as exc:
            raise UserError(f"{gz_path} is not a valid gzip file ({exc}); delete it and run again") from None
        where = gz_path
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(f"{where} fails its sha256 check (truncated or corrupt); delete it and run again")
    return data


def _load_mnist_arrays(data_dir: Path, *, download_ok: bool = True, quiet: bool = False,
                       checksums: dict = MNIST_FILES):
    folder = data_dir / "MNIST" / "raw"
    arrays = {name: parse_idx(_mnist_file(folder, name, download_ok=download_ok, quiet=quiet,
                                          checksums=checksums), str(folder / name))
              for name in checksums}
    train = Split(arrays["train-images-idx3-ubyte"][:, None].copy(),
                  arrays["train-labels-idx1-ubyte"].astype(np.int64))
    test = Split(arrays["t10k-images-idx3-ubyte"][:, None].copy(),
                 arrays["t10k-labels-idx1-ubyte"].astype(np.int64))
    return train, test, [str(d) for d in range(10)], MNIST_MEAN, MNIST_STD


# --------------------------------------------------------------------------- CIFAR-10
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


def _load_cifar10_arrays(data_dir: Path, *, download_ok: bool = True, quiet: bool = False):
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


# --------------------------------------------------------------------------- digits
def _load_digits_arrays(data_dir: Path | None = None, **_):
    """scikit-learn's 8x8 digits (1,797 images, ships with the package): a fixed 80/20 split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))  # fixed: the test set never moves
    cut = int(0.8 * len(labels))
    train, test = Split(images[order[:cut]], labels[order[:cut]]), Split(images[order[cut:]], labels[order[cut:]])
    mean = float(train.x.mean() / 255.0)
    std = float(train.x.std() / 255.0)
    return train, test, [str(d) for d in range(10)], (mean,), (std,)


# --------------------------------------------------------------------------- registry
REGISTRY: dict[str, Callable] = {
    "mnist": _load_mnist_arrays,
    "cifar10": _load_cifar10_arrays,
    "digits": _load_digits_arrays,
}


def subset(split: Split, n: int | None, *, mode: str = "first", seed: int = 0) -> Split:
    """The first ``n`` examples, or a seeded random ``n`` (``mode="random"``)."""
    if n is None or n >= len(split):
        return split
    if mode == "first":
        return split.take(slice(0, n))
    if mode == "random":
        return split.take(np.sort(np.random.default_rng(seed).permutation(len(split))[:n]))
    raise ValueError(f"mode must be 'first' or 'random', got {mode!r}")


def train_val_split(split: Split, val_size: int | float, *, seed: int = 0) -> tuple[Split, Split | None]:
    """Carve a validation set out of ``split`` with a seeded permutation (int = count, float = fraction)."""
    if not val_size:
        return split, None
    n_val = int(round(val_size * len(split))) if isinstance(val_size, float) else int(val_size)
    if not 0 < n_val < len(split):
        raise UserError(f"validation size {val_size} does not fit a training set of {len(split)}")
    order = np.random.default_rng(seed).permutation(len(split))
    return split.take(np.sort(order[n_val:])), split.take(np.sort(order[:n_val]))


def load(name: str, data_dir: str | os.PathLike | None = None, *, limit: int | None = None,
         limit_test: int | None = None, subset_mode: str = "first", val_size: int | float = 0,
         seed: int = 0, download_ok: bool = True, quiet: bool = False) -> Dataset:
    """Load a registered dataset; ``limit`` trims train (before the validation split)."""
    if name not in REGISTRY:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    train, test, classes, mean, std = REGISTRY[name](resolve_data_dir(data_dir),
                                                     download_ok=download_ok, quiet=quiet)
    train = subset(train, limit, mode=subset_mode, seed=seed)
    test = subset(test, limit_test, mode=subset_mode, seed=seed)
    train, val = train_val_split(train, val_size, seed=seed)
    return Dataset(name, train, test, val, classes, tuple(mean), tuple(std))


def mnist(data_dir=None, **kwargs) -> Dataset:
    return load("mnist", data_dir, **kwargs)


def cifar10(data_dir=None, **kwargs) -> Dataset:
    return load("cifar10", data_dir, **kwargs)


def digits(**kwargs) -> Dataset:
    return load("digits", None, **kwargs)


# --------------------------------------------------------------------------- torch on demand
def torch_dataset(ds: Dataset, split: str = "train"):
    """A ``TensorDataset`` of normalised float32 images and int64 labels (imports torch)."""
    import torch
    from torch.utils.data import TensorDataset

    part = getattr(ds, split)
    if part is None:
        raise UserError(f"{ds.name} has no {split} split here; ask load() for val_size > 0")
    return TensorDataset(torch.from_numpy(ds.normalize(part.x)), torch.from_numpy(part.y))


def torch_loader(ds: Dataset, split: str = "train", *, batch_size: int = 64,
                 shuffle: bool | None = None, seed: int = 0):
    """A ``DataLoader`` over :func:`torch_dataset`, shuffled (seeded) for the train split by default."""
    import torch
    from torch.utils.data import DataLoader

    shuffle = split == "train" if shuffle is None else shuffle
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(torch_dataset(ds, split), batch_size=batch_size, shuffle=shuffle,
                      generator=generator)


# --------------------------------------------------------------------------- synthetic tasks
def moons(n: int = 500, *, noise: float = 0.1, seed: int = 0) -> Split:
    """Two interleaving half circles (float32 (n, 2), int64 labels 0/1)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0, t1 = rng.uniform(0, np.pi, n0), rng.uniform(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], 1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)]).astype(np.int64)
    return _shuffled(x, y, rng)


def circles(n: int = 500, *, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Split:
    """A small circle (label 1) inside a large one (label 0)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(np.arange(n) < n0, 1.0, factor)
    x = np.stack([radius * np.cos(t), radius * np.sin(t)], 1) + rng.normal(0, noise, (n, 2))
    y = (np.arange(n) >= n0).astype(np.int64)
    return _shuffled(x, y, rng)


def spirals(n: int = 600, *, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Split:
    """``classes`` interleaved arms of a spiral (the CS231n toy problem)."""
    rng = np.random.default_rng(seed)
    per = n // classes
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.0, 1.0, per)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, per) + rng.normal(0, noise, per)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(per, c))
    return _shuffled(np.concatenate(xs), np.concatenate(ys).astype(np.int64), rng)


def nonlinear_tabular(n: int = 1000, *, n_features: int = 2, label_noise: float = 0.05,
                      seed: int = 0) -> Split:
    """Gaussian features, a hidden non-linear rule for the binary label, then ``label_noise`` flips.

    The rule mixes a product, a sine and a square, so no linear model can express it.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, n_features))
    score = x[:, 0] * x[:, 1 % n_features] + np.sin(2 * x[:, 0]) - 0.5 * (x[:, -1] ** 2 - 1)
    if n_features > 2:
        score = score + 0.5 * np.tanh(x[:, 2:].sum(1))
    y = (score > 0).astype(np.int64)
    flip = rng.random(n) < label_noise
    y[flip] = 1 - y[flip]
    return Split(x.astype(np.float32), y)


REGRESSION_TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sine": lambda x: np.sin(3 * x),
    "abs": np.abs,                                  # a kink at 0
    "step": lambda x: (x > 0).astype(float),        # a jump at 0
    "cubic": lambda x: x ** 3 - x,
}

REGRESSION_FORMULAS = {"sine": "sin(3x)", "abs": "|x|", "step": "step(x)", "cubic": "x³ - x"}


def regression_1d(n: int = 200, *, target: str = "sine", noise: float = 0.1,
                  low: float = -2.0, high: float = 2.0, seed: int = 0) -> Split:
    """``x`` uniform in [low, high], ``y = target(x) + noise``; float32 columns of shape (n, 1)."""
    if target not in REGRESSION_TARGETS:
        raise UserError(f"unknown target {target!r}; choose one of {', '.join(REGRESSION_TARGETS)}")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(low, high, n))
    y = REGRESSION_TARGETS[target](x) + rng.normal(0, noise, n)
    return Split(x[:, None].astype(np.float32), y[:, None].astype(np.float32))


def _shuffled(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Split:
    order = rng.permutation(len(y))
    return Split(x[order].astype(np.float32), y[order])
