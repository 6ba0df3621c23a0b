"""twinnet.data: real MNIST, lookup order, downloads from a loopback server, synthetic
sets, splits and scaling, BatchLoader, and twinnet.utils' atomic writes."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from twinnet import data
from twinnet.data import download, synthetic
from twinnet.data.idx import to_idx_bytes
from twinnet.utils import atomic_open, atomic_write

DATA_ROOT = Path(
    os.environ.get("TWINNET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets"
)
MNIST_DIR = DATA_ROOT / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists()
    and not (MNIST_DIR / "train-images-idx3-ubyte").exists(),
    reason=f"real MNIST not found in {MNIST_DIR} (set TWINNET_DATA to the folder holding mnist/)",
)
# per-class counts of the official MNIST files
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test sees the user's cache, $TWINNET_DATA or $TWINNET_MIRRORS unless it sets them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("TWINNET_DATA", raising=False)
    monkeypatch.delenv("TWINNET_MIRRORS", raising=False)


# -- real MNIST --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    if not MNIST_DIR.is_dir():
        pytest.skip(f"real MNIST not found in {MNIST_DIR}")
    return data.load("mnist", data_dir=DATA_ROOT)


@needs_mnist
def test_mnist_shapes_dtypes_counts(mnist):
    assert (mnist.name, mnist.task, mnist.n_features, mnist.n_classes) == (
        "mnist",
        "multiclass",
        784,
        10,
    )
    assert mnist.classes == [str(d) for d in range(10)]
    assert Path(mnist.source) == MNIST_DIR
    for ds, n in ((mnist.train, 54000), (mnist.val, 6000), (mnist.test, 10000)):
        assert ds.x.shape == (n, 784) and ds.x.dtype == np.float32 and ds.x.flags.c_contiguous
        assert ds.y.shape == (n,) and ds.y.dtype == np.int64
    counts = np.bincount(np.concatenate([mnist.train.y, mnist.val.y]), minlength=10)
    assert counts.tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.test.y, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert mnist.test.y[:5].tolist() == [7, 2, 1, 0, 4]  # the official test order is kept


@needs_mnist
def test_mnist_standard_scaling(mnist):
    info = mnist.scaler_info
    json.dumps(info)  # JSON-able
    assert info["method"] == "standard" and info["per_feature"] is False
    # the classic (x/255 - 0.1307) / 0.3081, fitted on our training split
    assert info["shift"] / 255 == pytest.approx(0.1307, abs=2e-3)
    assert info["scale"] / 255 == pytest.approx(0.3081, abs=2e-3)
    x = mnist.train.x
    assert float(x.mean(dtype=np.float64)) == pytest.approx(0.0, abs=1e-4)
    assert float(x.std(dtype=np.float64)) == pytest.approx(1.0, abs=1e-4)
    # transform() applies the same scaling to raw pixels
    raw = np.array([[0] * 783 + [255]], dtype=np.uint8)
    out = mnist.transform(raw)
    assert out.dtype == np.float32
    np.testing.assert_allclose(
        out[0, [0, -1]],
        [-info["shift"] / info["scale"], (255 - info["shift"]) / info["scale"]],
        rtol=1e-6,
    )


@needs_mnist
def test_mnist_minmax_float64_subset(tmp_path):
    s = data.load(
        "mnist", data_dir=MNIST_DIR, scale="minmax", dtype=np.float64, n_samples=1000, seed=3
    )
    assert (len(s.train), len(s.val), len(s.test)) == (900, 100, 10000)
    assert s.train.x.dtype == np.float64
    assert s.scaler_info["shift"] == 0.0 and s.scaler_info["scale"] == 255.0
    assert s.test.x.min() == 0.0 and s.test.x.max() == 1.0
    raw = data.read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(s.test.x, raw.reshape(10000, -1) / 255.0)


@needs_mnist
def test_mnist_checksums_verified():
    spec = download.REMOTE["mnist"]
    for f in spec.files:  # the constants match the published list
        line = next(
            ln
            for ln in (MNIST_DIR / "SHA256SUMS.raw").read_text().splitlines()
            if ln.endswith(f.name)
        )
        assert line.split()[0] == f.sha256
    arrays = download.read_folder(MNIST_DIR, spec)  # verifies every SHA-256
    assert arrays["train"][0].shape == (60000, 28, 28) and arrays["test"][1].shape == (10000,)


@needs_mnist
def test_mnist_checksum_mismatch_names_file_and_hashes(tmp_path):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / f"{name}.gz").symlink_to(MNIST_DIR / f"{name}.gz")
    raw = bytearray(gzip.decompress((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # still a valid label: only the checksum can tell
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(data.DataError) as e:
        data.load("mnist", data_dir=tmp_path, download=False)
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte" in msg
    assert download.MNIST_SHA256["t10k-labels-idx1-ubyte"] in msg
    assert hashlib.sha256(bytes(raw)).hexdigest() in msg


# -- a tiny fabricated MNIST-format set ---------------------------------------------------------


def _tiny_blobs(n_train=12, n_test=5):
    rng = np.random.default_rng(42)
    return {
        "train-images-idx3-ubyte": to_idx_bytes(
            rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
        ),
        "train-labels-idx1-ubyte": to_idx_bytes(np.arange(n_train, dtype=np.uint8) % 10),
        "t10k-images-idx3-ubyte": to_idx_bytes(
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
        ),
        "t10k-labels-idx1-ubyte": to_idx_bytes(np.arange(n_test, dtype=np.uint8) % 10),
    }


BLOBS = _tiny_blobs()


def _write_tiny(folder: Path, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in BLOBS.items():
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(blob) if gz else blob)
    return folder


@pytest.fixture
def tiny(monkeypatch):
    """Make "mnist" mean the tiny set (its SHA-256s, 12 train / 5 test images)."""
    sums = {name: hashlib.sha256(blob).hexdigest() for name, blob in BLOBS.items()}
    spec = download.RemoteSpec(
        "mnist",
        mirrors=("http://127.0.0.1:9/unused/",),
        files=download.idx_files(12, 5, sha256=sums),
    )
    monkeypatch.setitem(download.REMOTE, "mnist", spec)
    return spec


def test_tiny_raw_and_gz_load_the_same(tmp_path, tiny):
    a = data.load("mnist", data_dir=_write_tiny(tmp_path / "gz"), download=False, val_fraction=0.25)
    b = data.load(
        "mnist", data_dir=_write_tiny(tmp_path / "raw", gz=False), download=False, val_fraction=0.25
    )
    assert (len(a.train), len(a.val), len(a.test)) == (9, 3, 5)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, split).x, getattr(b, split).x)
        np.testing.assert_array_equal(getattr(a, split).y, getattr(b, split).y)


def test_lookup_order(tmp_path, monkeypatch, tiny):
    dd, env, cache = tmp_path / "dd", tmp_path / "env", tmp_path / "xdg-cache" / "twinnet"
    for root in (dd, env, cache):
        _write_tiny(root / "mnist")
    monkeypatch.setenv("TWINNET_DATA", str(env))
    assert data.load("mnist", data_dir=dd, download=False).source == str(
        dd / "mnist"
    )  # data_dir/<name>
    assert data.load("mnist", data_dir=dd / "mnist", download=False).source == str(
        dd / "mnist"
    )  # the folder itself
    assert data.load("mnist", download=False).source == str(
        env / "mnist"
    )  # $TWINNET_DATA beats the cache
    with pytest.raises(data.DataError, match="does not exist"):  # an explicit data_dir is never skipped
        data.load("mnist", data_dir=tmp_path / "nope", download=False)
    monkeypatch.delenv("TWINNET_DATA")
    assert data.load("mnist", download=False).source == str(
        cache / "mnist"
    )  # $XDG_CACHE_HOME/twinnet
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.default_cache_dir() == tmp_path / "home" / ".cache" / "twinnet"


def test_missing_everywhere_names_the_folders(tmp_path, monkeypatch, tiny):
    partial = _write_tiny(tmp_path / "partial")
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("TWINNET_DATA", str(tmp_path / "env"))
    with pytest.raises(data.DataError) as e:  # an explicit data_dir: no fall-back
        data.load("mnist", data_dir=partial, download=False)
    assert f"{partial}" in str(e.value) and "missing t10k-labels-idx1-ubyte" in str(e.value)
    with pytest.raises(data.DataError) as e:
        data.load("mnist", download=False)
    msg = str(e.value)
    assert str(tmp_path / "env" / "mnist") in msg
    assert str(tmp_path / "xdg-cache" / "twinnet" / "mnist") in msg
    assert "twinnet data fetch mnist" in msg


def test_bad_local_file_is_an_error_not_a_fallback(tmp_path, monkeypatch, tiny):
    dd = _write_tiny(tmp_path / "dd")
    _write_tiny(tmp_path / "env" / "mnist")
    monkeypatch.setenv("TWINNET_DATA", str(tmp_path / "env"))
    blob = bytearray(BLOBS["train-images-idx3-ubyte"])
    blob[-1] ^= 0xFF
    (dd / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(blob)))
    with pytest.raises(
        data.DataError,
        match=r"train-images-idx3-ubyte\.gz: SHA-256 .* expected " + tiny.files[0].sha256,
    ):
        data.load("mnist", data_dir=dd)


# -- downloads from a loopback HTTP server ---------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1: good/ has the tiny set, bad/ a corrupted copy."""
    www = tmp_path / "www"
    _write_tiny(www / "good")
    bad = _write_tiny(www / "bad")
    blob = bytearray(BLOBS["train-labels-idx1-ubyte"])
    blob[-1] = (blob[-1] + 1) % 10  # valid structure, wrong checksum
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(blob)))
    _Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(www))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_skips_404_mirror(tmp_path, monkeypatch, tiny, server):
    monkeypatch.setenv("TWINNET_MIRRORS", f"{server}/missing/,{server}/good/")
    splits = data.load("mnist")  # nothing local: downloads into the (XDG) cache
    cache = tmp_path / "xdg-cache" / "twinnet" / "mnist"
    assert splits.source == str(cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in BLOBS)
    assert "/missing/train-images-idx3-ubyte.gz" in _Handler.requests
    assert len(splits.train) + len(splits.val) == 12 and len(splits.test) == 5
    # a second fetch finds everything verified and downloads nothing
    n = len(_Handler.requests)
    assert data.fetch("mnist") == cache
    assert len(_Handler.requests) == n


def test_corrupt_download_rejected_and_nothing_left(tmp_path, tiny, server):
    with pytest.raises(data.DataError) as e:
        data.fetch("mnist", cache_dir=tmp_path / "c", mirrors=[f"{server}/bad/"], progress=False)
    msg = str(e.value)
    assert "train-labels-idx1-ubyte.gz" in msg and "SHA-256" in msg and "/bad/" in msg
    files = sorted(p.name for p in (tmp_path / "c" / "mnist").iterdir())
    assert files == ["train-images-idx3-ubyte.gz"]  # the good file before it stays; no temp file
    # a good mirror after the bad one completes the set, reusing what is verified
    folder = data.fetch(
        "mnist", cache_dir=tmp_path / "c", mirrors=[f"{server}/bad/", f"{server}/good/"]
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in BLOBS)
    assert _Handler.requests.count("/bad/train-images-idx3-ubyte.gz") == 1


def test_failed_first_download_leaves_no_folder(tmp_path, tiny, server):
    with pytest.raises(data.DataError, match=r"HTTP 404"):
        data.fetch("mnist", cache_dir=tmp_path / "c", mirrors=f"{server}/missing/")
    assert not (tmp_path / "c" / "mnist").exists()


def test_fetch_replaces_a_corrupt_cached_file(tmp_path, tiny, server):
    folder = _write_tiny(tmp_path / "c" / "mnist", gz=False)
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"garbage")
    data.fetch("mnist", cache_dir=tmp_path / "c", mirrors=f"{server}/good/")
    assert not (folder / "t10k-images-idx3-ubyte").exists()
    assert (folder / "t10k-images-idx3-ubyte.gz").exists()
    assert _Handler.requests == ["/good/t10k-images-idx3-ubyte.gz"]


def test_md5_of_gz_checked_for_fashion_style_specs(tmp_path, monkeypatch, server):
    md5 = {
        n: hashlib.md5((tmp_path / "www" / "good" / f"{n}.gz").read_bytes()).hexdigest()
        for n in BLOBS
    }
    md5["t10k-images-idx3-ubyte"] = "0" * 32
    spec = download.RemoteSpec(
        "fashion-mnist", mirrors=(f"{server}/good/",), files=download.idx_files(12, 5, md5_gz=md5)
    )
    monkeypatch.setitem(download.REMOTE, "fashion-mnist", spec)
    with pytest.raises(data.DataError, match="MD5 of the download is .* expected 0{32}"):
        data.fetch("fashion-mnist", cache_dir=tmp_path / "c")
    assert not (tmp_path / "c" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").exists()


def test_fetch_arguments():
    with pytest.raises(ValueError, match="fetchable datasets: mnist, fashion-mnist"):
        data.fetch("xor")
    with pytest.raises(ValueError, match="http"):
        data.fetch("mnist", mirrors=["ftp://example.org/"])


# -- registry, arguments, synthetic sets ---------------------------------------------------


def test_names_and_unknown():
    assert data.names() == [
        "mnist",
        "fashion-mnist",
        "digits",
        "xor",
        "click",
        "click-book",
        "spirals",
        "two-spirals",
        "sine",
    ]
    assert set(data.available()) == set(data.names())
    with pytest.raises(
        ValueError, match="unknown dataset 'cifar'; available: mnist, fashion-mnist, digits"
    ):
        data.load("cifar")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"val_fraction": 1.0}, "val_fraction must be a number in"),
        ({"scale": "zscore"}, "scale must be one of"),
        ({"dtype": np.int32}, "dtype must be float32 or float64, got int32"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"n_samples": 0}, "n_samples must be a positive integer"),
        ({"n_samples": 3}, "n_samples for xor must be >= 4"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load("xor", **kwargs)


SYNTHETIC = ["xor", "click", "spirals", "two-spirals", "sine"]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_deterministic_per_seed(name):
    n = 100 if name == "xor" else 2000 if name == "click" else None
    a, b = data.load(name, seed=5, n_samples=n), data.load(name, seed=5, n_samples=n)
    c = data.load(name, seed=6, n_samples=n)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, split).x, getattr(b, split).x)
        np.testing.assert_array_equal(getattr(a, split).y, getattr(b, split).y)
    assert not np.array_equal(a.train.x, c.train.x)
    assert a.source == "synthetic"
    json.dumps(a.scaler_info)


def test_click():
    s = data.load("click")
    assert (s.task, s.n_features, s.n_classes, s.classes) == (
        "binary",
        20,
        2,
        ["no click", "click"],
    )
    assert (len(s.train), len(s.val), len(s.test)) == (14000, 3000, 3000)  # 70/15/15 of 20000
    assert s.train.y.dtype == np.int64 and set(np.unique(s.train.y)) == {0, 1}
    assert 0.20 <= np.concatenate([s.train.y, s.val.y, s.test.y]).mean() <= 0.30
    assert s.scaler_info["per_feature"] is True and len(s.scaler_info["shift"]) == 20
    np.testing.assert_allclose(s.train.x.mean(axis=0), 0, atol=1e-5)


def _auc(score, y):
    """ROC AUC by ranks (no ties in continuous scores)."""
    ranks = np.empty(len(score))
    ranks[np.argsort(score)] = np.arange(1, len(score) + 1)
    n1 = y.sum()
    return (ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1))


def test_click_needs_a_nonlinear_model():
    sklearn = pytest.importorskip("sklearn.linear_model")
    s = data.load("click", scale="none", dtype=np.float64)
    lr = sklearn.LogisticRegression(max_iter=500).fit(s.train.x, s.train.y)
    auc_linear = _auc(lr.decision_function(s.test.x), s.test.y)
    auc_true = _auc(synthetic.click_logit(s.test.x), s.test.y)
    assert auc_true > 0.85 and auc_linear < auc_true - 0.1


def test_xor():
    s = data.load("xor")
    assert (s.task, len(s.train), len(s.val), len(s.test)) == ("binary", 4, 0, 4)
    np.testing.assert_array_equal(s.train.x, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(s.train.y, [0, 1, 1, 0])
    np.testing.assert_array_equal(s.test.y, [0, 1, 1, 0])
    noisy = data.load("xor", n_samples=200)
    assert (len(noisy.train), len(noisy.val), len(noisy.test)) == (140, 30, 30)
    x = np.concatenate([noisy.train.x, noisy.val.x, noisy.test.x])
    y = np.concatenate([noisy.train.y, noisy.val.y, noisy.test.y])
    np.testing.assert_array_equal(y, (np.round(x[:, 0]) != np.round(x[:, 1])).astype(np.int64))


def test_spirals_and_sine():
    s = data.load("spirals")
    assert (s.task, s.n_classes, s.n_features) == ("multiclass", 3, 2)
    y = np.concatenate([s.train.y, s.val.y, s.test.y])
    assert np.bincount(y).tolist() == [500, 500, 500]
    assert data.load("two-spirals").n_classes == 2
    r = data.load("sine", dtype=np.float64)
    assert (r.task, r.n_classes, r.classes) == ("regression", None, None)
    assert (
        r.train.x.shape == (700, 1)
        and r.train.y.shape == (700, 1)
        and r.train.y.dtype == np.float64
    )
    resid = r.train.y - np.sin(np.pi * r.train.x)
    assert abs(resid.std() - 0.1) < 0.02 and np.all(np.abs(r.train.x) <= 1)


def test_digits():
    pytest.importorskip("sklearn")
    s = data.load("digits", seed=1)
    assert (s.n_features, s.n_classes) == (64, 10)
    assert (len(s.train), len(s.val), len(s.test)) == (1079, 359, 359)  # 60/20/20 of 1797
    assert s.scaler_info["per_feature"] is False
    assert abs(float(s.train.x.mean())) < 1e-5


def test_dataset_indexing():
    s = data.load("sine")
    part = s.train[10:20]
    assert isinstance(part, data.Dataset) and len(part) == 10
    np.testing.assert_array_equal(part.x, s.train.x[10:20])
    x0, y0 = s.train[3]
    np.testing.assert_array_equal(x0, s.train.x[3])
    assert "Dataset(n=700" in repr(s.train)
    with pytest.raises(ValueError, match="same length"):
        data.Dataset(np.zeros((3, 2)), np.zeros(2))


# -- user arrays and files -------------------------------------------------------------------


def test_from_arrays_labels_and_validation():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 3))
    s = data.from_arrays(x, np.array(["cat", "dog", "emu"] * 33 + ["cat"]), scale="standard")
    assert (s.task, s.n_classes, s.classes) == ("multiclass", 3, ["cat", "dog", "emu"])
    assert (len(s.train), len(s.val), len(s.test)) == (70, 15, 15)
    assert s.train.y.dtype == np.int64 and s.train.y.max() == 2
    b = data.from_arrays(x, (x[:, 0] > 0).astype(int))
    assert (b.task, b.n_classes) == ("binary", 2)
    assert data.from_arrays(x, x[:, :1]).task == "regression"
    with pytest.raises(ValueError, match="x must be 2-D"):
        data.from_arrays(x[:, 0], x[:, 0])
    with pytest.raises(ValueError, match=r"y must be \(N,\) or \(N, k\) with N = 100"):
        data.from_arrays(x, np.zeros(99, int))
    bad = x.copy()
    bad[7, 1] = np.nan
    with pytest.raises(
        data.DataError,
        match=r"dataset 'mine': features contain NaN or inf \(1 values, first at index \[7, 1\]\)",
    ):
        data.from_arrays(bad, np.zeros(100, int), name="mine")


def test_load_npz_user_file(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
    np.savez(tmp_path / "mine.npz", x=x, y=y, x_test=x[:10], y_test=y[:10])
    s = data.load(str(tmp_path / "mine.npz"))
    assert (s.name, len(s.test), s.n_classes) == ("mine", 10, 3)
    x[0, 0] = np.inf
    np.savez(tmp_path / "inf.npz", x=x, y=y)
    with pytest.raises(data.DataError, match="dataset 'inf': features contain NaN or inf"):
        data.load(tmp_path / "inf.npz")


def test_apply_scaler_round_trip():
    x = np.random.default_rng(0).uniform(-3, 7, (200, 5))
    for method in ("standard", "minmax", "none"):
        info = data.fit_scaler(x, method, per_feature=True)
        json.dumps(info)
        z = data.apply_scaler(x, info, dtype=np.float64)
        if method == "standard":
            np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
            np.testing.assert_allclose(z.std(0), 1, atol=1e-12)
        elif method == "minmax":
            np.testing.assert_allclose([z.min(0), z.max(0)], [np.zeros(5), np.ones(5)], atol=1e-12)
        else:
            np.testing.assert_array_equal(z, x)
    const = np.ones((10, 2))  # zero spread: scale 1, not a division by zero
    assert np.all(data.apply_scaler(const, data.fit_scaler(const, "standard", True)) == 0)
    with pytest.raises(ValueError, match="fitted on 5 features, x has 4"):
        data.apply_scaler(x[:, :4], data.fit_scaler(x, "standard", True))


# -- BatchLoader ------------------------------------------------------------------------------


def _xy(n=103, d=3):
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], d, axis=1)  # row i is all i
    return x, np.arange(n, dtype=np.int64)


def test_loader_covers_every_sample_once_and_pairs_rows():
    x, y = _xy()
    loader = data.BatchLoader(x, y, batch_size=10, seed=3)
    assert len(loader) == 11
    for e in range(3):
        batches = list(loader.epoch(e))
        assert [len(b[1]) for b in batches] == [10] * 10 + [3]
        seen = np.concatenate([yb for _, yb in batches])
        assert sorted(seen.tolist()) == list(range(103))
        for xb, yb in batches:
            np.testing.assert_array_equal(xb[:, 0], yb)  # x and y stay paired
            assert xb.flags.c_contiguous


def test_loader_order_is_a_function_of_seed_and_epoch():
    x, y = _xy()
    a, b = data.BatchLoader(x, y, 16, seed=7), data.BatchLoader(x, y, 16, seed=7)
    order = lambda loader, e: np.concatenate([yb.copy() for _, yb in loader.epoch(e)])  # noqa: E731
    np.testing.assert_array_equal(order(a, 2), order(b, 2))
    np.testing.assert_array_equal(order(a, 2), np.random.default_rng([7, 2]).permutation(103))
    assert not np.array_equal(order(a, 1), order(a, 2))
    assert not np.array_equal(order(a, 1), order(data.BatchLoader(x, y, 16, seed=8), 1))


def test_loader_resume_at_start_batch():
    x, y = _xy()
    full = [yb.copy() for _, yb in data.BatchLoader(x, y, 8, seed=1).epoch(4)]
    fresh = data.BatchLoader(x, y, 8, seed=1)  # a new process resuming at epoch 4, batch 5
    resumed = [yb.copy() for _, yb in fresh.epoch(4, start_batch=5)]
    assert len(resumed) == len(full) - 5
    for u, v in zip(full[5:], resumed, strict=True):
        np.testing.assert_array_equal(u, v)
    assert list(fresh.epoch(4, start_batch=len(fresh))) == []
    with pytest.raises(ValueError, match="start_batch must be an integer in"):
        fresh.epoch(4, start_batch=len(fresh) + 1)


def test_loader_drop_last_and_no_shuffle():
    x, y = _xy()
    loader = data.BatchLoader(x, y, 10, drop_last=True)
    assert len(loader) == 10
    assert sum(len(yb) for _, yb in loader.epoch(0)) == 100
    plain = data.BatchLoader(x, y, 50, shuffle=False)
    batches = list(plain.epoch(0))
    assert [len(yb) for _, yb in batches] == [50, 50, 3]
    assert np.shares_memory(batches[0][0], x) and np.shares_memory(
        batches[2][1], y
    )  # views of the original
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y)


def test_loader_shuffled_batches_are_arrays_of_their_own():
    x, y = _xy()
    loader = data.BatchLoader(x, y, 10, seed=0)
    first = list(loader.epoch(0))
    kept = [(xb.copy(), yb.copy()) for xb, yb in first]
    list(loader.epoch(1))  # a later epoch does not overwrite batches already handed out
    for (xb, yb), (xk, yk) in zip(first, kept, strict=True):
        assert xb.flags.c_contiguous and not np.shares_memory(xb, x) and not np.shares_memory(yb, y)
        np.testing.assert_array_equal(xb, xk)
        np.testing.assert_array_equal(yb, yk)
    perm = loader.permutation(0)
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in first]), x[perm])
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in first]), y[perm])


def test_loader_arguments():
    x, y = _xy()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            data.BatchLoader(x, y, bad)
    with pytest.raises(ValueError, match="same number of samples"):
        data.BatchLoader(x, y[:-1], 4)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        data.BatchLoader(x, y, 4).epoch(-1)


# -- twinnet.utils: atomic writes --------------------------------------------------------------


def test_atomic_write_removes_orphan_temp_files_of_its_own_file_only(tmp_path):
    # what a process killed in the middle of a write leaves (defect D8, fixed)
    orphans = [tmp_path / ".history.csv.k1l2m3.tmp", tmp_path / ".history.csv.zz.tmp"]
    other = tmp_path / ".metrics.json.abc.tmp"
    for f in (*orphans, other):
        f.write_bytes(b"partial")
    atomic_write(tmp_path / "history.csv", b"epoch\n")
    assert (tmp_path / "history.csv").read_bytes() == b"epoch\n"
    assert not any(o.exists() for o in orphans)
    assert other.exists()  # another file's temp file: its own next write removes it
    # atomic_open, used for downloads (two processes may fetch at once), leaves them alone
    orphan = tmp_path / ".data.gz.x.tmp"
    orphan.write_bytes(b"partial")
    with atomic_open(tmp_path / "data.gz") as f:
        f.write(b"data")
    assert orphan.exists() and (tmp_path / "data.gz").read_bytes() == b"data"


def test_atomic_write_and_open(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode
    with atomic_open(tmp_path / "t.txt", "w") as f:
        f.write("héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"two"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "t.txt"]  # no temp left
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "no" / "x.bin", b"")
    with pytest.raises(TypeError, match="must be bytes"):
        atomic_write(target, "text")
