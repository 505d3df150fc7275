"""MNIST from LeCun's IDX files (raw or .gz), every file checked against its published checksums."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from shared_utils.data.core import Split
from shared_utils.data.fetch import _offline_error, download, file_digest
from shared_utils.errors import UserError

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


def load_arrays(data_dir: Path, *, download_ok: bool = True, quiet: bool = False,
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


