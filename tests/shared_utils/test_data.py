import gzip
import hashlib
import pickle
import urllib.error

import numpy as np
import pytest

from shared_utils import data
from shared_utils.errors import UserError
from tests.conftest import requires


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def make_mnist(folder, n_train=6, n_test=4, gz=False):
    """A tiny MNIST in the official layout; returns its checksum table."""
    rng = np.random.default_rng(0)
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    checksums = {}
    for name, array in arrays.items():
        payload = idx_bytes(array)
        if gz:
            packed = gzip.compress(payload)
            (raw / (name + ".gz")).write_bytes(packed)
            md5 = hashlib.md5(packed).hexdigest()
        else:
            (raw / name).write_bytes(payload)
            md5 = "unused"
        checksums[name] = (hashlib.sha256(payload).hexdigest(), md5)
    return arrays, checksums


def test_parse_idx_roundtrip_and_truncation():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(array)), array)
    with pytest.raises(UserError, match="truncated or corrupt"):
        data.parse_idx(idx_bytes(array)[:-1])
    with pytest.raises(UserError, match="not an IDX file"):
        data.parse_idx(b"\x01\x02\x03\x04")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loader_reads_raw_and_gz(tmp_path, gz):
    arrays, checksums = make_mnist(tmp_path, gz=gz)
    train, test, classes, mean, std = data.mnist_idx.load_arrays(tmp_path, download_ok=False, checksums=checksums)
    assert train.x.shape == (6, 1, 28, 28) and train.x.dtype == np.uint8
    assert train.y.dtype == np.int64 and test.y.dtype == np.int64
    np.testing.assert_array_equal(train.x[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(test.y, arrays["t10k-labels-idx1-ubyte"])
    assert classes == [str(d) for d in range(10)]


def test_corrupted_mnist_file_fails_its_checksum(tmp_path):
    _, checksums = make_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    payload = bytearray(path.read_bytes())
    payload[100] ^= 0xFF  # one flipped byte, same length: only the checksum can see it
    path.write_bytes(bytes(payload))
    with pytest.raises(UserError, match="sha256 check"):
        data.mnist_idx.load_arrays(tmp_path, download_ok=False, checksums=checksums)


def test_truncated_gz_fails_its_md5(tmp_path):
    _, checksums = make_mnist(tmp_path, gz=True)
    path = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(UserError, match="md5 check"):
        data.mnist_idx.load_arrays(tmp_path, download_ok=False, checksums=checksums)


def test_offline_error_names_folder_and_files(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data.fetch.urllib.request, "urlopen", no_network)
    with pytest.raises(UserError) as excinfo:
        data.load("mnist", tmp_path)
    message = str(excinfo.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "DL_DATA_DIR" in message
    assert "\n" not in message
    assert not list(tmp_path.rglob("*.part")), "a failed download leaves no partial file"


def test_download_verifies_md5_and_is_atomic(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"real payload" * 100)
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "file.bin"
    data.download([source.as_uri()], dest, md5=md5, quiet=True)
    assert dest.read_bytes() == source.read_bytes()
    bad = tmp_path / "out" / "bad.bin"
    with pytest.raises(OSError, match="md5"):
        data.download([source.as_uri()], bad, md5="0" * 32, quiet=True)
    assert not bad.exists() and not list((tmp_path / "out").glob("*.part"))


def write_cifar_batch(path, n, seed, byte_keys=True):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    key = (lambda k: k.encode()) if byte_keys else (lambda k: k)
    with open(path, "wb") as f:
        pickle.dump({key("data"): images, key("labels"): labels, key("batch_label"): "x"}, f, protocol=2)
    return images, labels


@pytest.mark.parametrize("byte_keys", [True, False])
def test_cifar_batches_are_parsed(tmp_path, byte_keys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    written = [write_cifar_batch(folder / name, 5, i, byte_keys) for i, name in enumerate(data.CIFAR10_BATCHES)]
    ds = data.load("cifar10", tmp_path, download_ok=False)
    assert ds.train.x.shape == (25, 3, 32, 32) and ds.train.x.dtype == np.uint8
    assert ds.test.x.shape == (5, 3, 32, 32) and ds.train.y.dtype == np.int64
    # channel-major rows: the first 1024 bytes are the red plane
    np.testing.assert_array_equal(ds.train.x[0, 0].ravel(), written[0][0][0, :1024])
    np.testing.assert_array_equal(ds.test.y, written[5][1])
    assert ds.classes[0] == "airplane" and len(ds.mean) == 3


def test_cifar_corrupt_and_malicious_batches_are_refused(tmp_path):
    good = tmp_path / "good"
    write_cifar_batch(good, 4, 0)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(UserError, match="not a readable CIFAR batch"):
        data.read_cifar_batch(truncated)

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil"
    evil.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(UserError, match="not a readable CIFAR batch"):
        data.read_cifar_batch(evil)


def test_limit_subset_and_validation_split_are_seeded():
    split = data.Split(np.arange(100)[:, None], np.arange(100))
    assert data.subset(split, 10).y.tolist() == list(range(10))
    a = data.subset(split, 10, mode="random", seed=1).y
    assert a.tolist() == data.subset(split, 10, mode="random", seed=1).y.tolist()
    assert a.tolist() != data.subset(split, 10, mode="random", seed=2).y.tolist()
    train, val = data.train_val_split(split, 0.2, seed=3)
    assert len(train) == 80 and len(val) == 20
    assert set(train.y) | set(val.y) == set(range(100)) and not set(train.y) & set(val.y)
    train2, val2 = data.train_val_split(split, 20, seed=3)
    assert val2.y.tolist() == val.y.tolist()


def test_stratified_subset_balances_the_classes_and_is_seeded():
    labels = np.repeat(np.arange(10), [500, 50, 80, 90, 100, 110, 120, 130, 140, 680])   # unbalanced, 2,000
    split = data.Split(np.arange(len(labels))[:, None], labels)
    small = data.subset(split, 100, mode="stratified", seed=0)
    assert np.bincount(small.y, minlength=10).tolist() == [10] * 10       # a random 100 would not be
    odd = data.subset(split, 103, mode="stratified", seed=0)
    assert sorted(np.bincount(odd.y, minlength=10).tolist()) == [10] * 7 + [11] * 3
    assert len(set(odd.x[:, 0])) == 103                                   # no example twice
    assert small.x[:, 0].tolist() == data.subset(split, 100, mode="stratified", seed=0).x[:, 0].tolist()
    assert small.x[:, 0].tolist() != data.subset(split, 100, mode="stratified", seed=1).x[:, 0].tolist()
    with pytest.raises(UserError, match="needs 100 examples of class 1; there are 50"):
        data.subset(split, 1000, mode="stratified")


def test_digits_is_offline_and_normalises():
    ds = data.digits(val_size=100, seed=0)
    assert ds.train.x.dtype == np.uint8 and ds.train.x.shape[1:] == (1, 8, 8)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797
    x = ds.normalize(ds.train.x)
    assert x.dtype == np.float32
    full_train = np.concatenate([ds.train.x, ds.val.x])
    assert abs(float(ds.normalize(full_train).mean())) < 1e-3
    assert abs(float(ds.normalize(full_train).std()) - 1) < 1e-3


@pytest.mark.parametrize("make", [data.moons, data.circles, data.spirals])
def test_toy_sets_are_seeded(make):
    a, b, c = make(seed=0), make(seed=0), make(seed=1)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert a.x.dtype == np.float32 and a.y.dtype == np.int64 and a.x.shape[1] == 2


def test_nonlinear_tabular_label_noise_rate():
    clean = data.nonlinear_tabular(20000, n_features=3, label_noise=0.0, seed=0)
    noisy = data.nonlinear_tabular(20000, n_features=3, label_noise=0.05, seed=0)
    np.testing.assert_array_equal(clean.x, noisy.x)
    flipped = float((clean.y != noisy.y).mean())
    assert 0.04 < flipped < 0.06
    # the rule is not linear: least squares on the features gets far from perfect
    xb = np.c_[clean.x, np.ones(len(clean.x))]
    w, *_ = np.linalg.lstsq(xb, clean.y * 2.0 - 1, rcond=None)
    assert ((xb @ w > 0) == clean.y).mean() < 0.8


def test_regression_targets():
    s = data.regression_1d(50, target="abs", noise=0.0, seed=0)
    np.testing.assert_allclose(s.y[:, 0], np.abs(s.x[:, 0]), atol=1e-6)
    with pytest.raises(UserError, match="unknown target"):
        data.regression_1d(target="nope")


def test_unknown_dataset():
    with pytest.raises(UserError, match="unknown dataset"):
        data.load("imagenet")


@requires("mnist")
def test_real_mnist_is_exact():
    ds = data.mnist()
    assert len(ds.train) == 60000 and len(ds.test) == 10000
    assert ds.train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.test.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert abs(float(ds.train.x.mean()) - 33.32) < 0.01


@requires("cifar10")
def test_real_cifar10_counts():
    ds = data.cifar10(val_size=5000, seed=0)
    assert len(ds.train) == 45000 and len(ds.val) == 5000 and len(ds.test) == 10000
    assert np.bincount(ds.test.y).tolist() == [1000] * 10
    assert np.bincount(np.concatenate([ds.train.y, ds.val.y])).tolist() == [5000] * 10


def test_torch_wrappers_normalise_and_shuffle_with_a_seed():
    torch = pytest.importorskip("torch")
    ds = data.digits(val_size=100, seed=0)
    from shared_utils.pytorch.pipeline import torch_dataset, torch_loader

    dataset = torch_dataset(ds, "val")
    x, y = dataset[0]
    assert x.dtype == torch.float32 and x.shape == (1, 8, 8) and y.dtype == torch.int64
    np.testing.assert_allclose(x.numpy(), ds.normalize(ds.val.x[:1])[0], rtol=1e-6)
    first = [yb.tolist() for _, yb in torch_loader(ds, "train", batch_size=32, seed=1)]
    again = [yb.tolist() for _, yb in torch_loader(ds, "train", batch_size=32, seed=1)]
    other = [yb.tolist() for _, yb in torch_loader(ds, "train", batch_size=32, seed=2)]
    assert first == again and first != other
    assert sorted(sum(first, [])) == sorted(ds.train.y.tolist())
    with pytest.raises(UserError, match="no val split"):
        torch_dataset(data.digits(), "val")
