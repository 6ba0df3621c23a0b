"""The IDX reader: round trips, gzip or raw, and every malformed file a DataError naming it."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from twinnet import data
from twinnet.data import download
from twinnet.data.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    DataError,
    check_images,
    check_labels,
    parse_idx,
    read_idx,
    to_idx_bytes,
)


def _images(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _labels(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 10, n, dtype=np.uint8)


def test_data_error_is_a_value_error():
    assert issubclass(data.DataError, ValueError)


def test_header_bytes_by_hand():
    # 0x00000801, one dimension of 3, then the three label bytes
    buf = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])
    assert to_idx_bytes(np.array([7, 2, 1], dtype=np.uint8)) == buf
    np.testing.assert_array_equal(parse_idx(buf, "x", magic=LABELS_MAGIC), [7, 2, 1])


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8", "<f4", "<i4"])
def test_round_trip_every_type(dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    b = parse_idx(to_idx_bytes(a), "mem")
    assert b.shape == (2, 3, 4)
    assert b.dtype.isnative
    np.testing.assert_array_equal(b, a)


def test_raw_and_gzip_read_the_same(tmp_path):
    imgs = _images()
    raw, gz = tmp_path / "a-idx3-ubyte", tmp_path / "b-idx3-ubyte.gz"
    raw.write_bytes(to_idx_bytes(imgs))
    gz.write_bytes(gzip.compress(to_idx_bytes(imgs)))
    np.testing.assert_array_equal(read_idx(raw), imgs)
    np.testing.assert_array_equal(read_idx(gz), imgs)
    # gzip is recognised by its magic bytes, not by the name
    odd = tmp_path / "c-idx3-ubyte"
    odd.write_bytes(gzip.compress(to_idx_bytes(imgs)))
    np.testing.assert_array_equal(data.read_idx(odd), imgs)


def _expect_error(tmp_path, name, blob, *needles, magic=None):
    path = tmp_path / name
    path.write_bytes(blob)
    with pytest.raises(DataError) as e:
        read_idx(path, magic=magic)
    msg = str(e.value)
    assert name in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_wrong_magic(tmp_path):
    blob = to_idx_bytes(_images())
    _expect_error(
        tmp_path, "train-labels-idx1-ubyte", blob, "0x00000801", "0x00000803", magic=LABELS_MAGIC
    )
    blob = to_idx_bytes(_labels())
    _expect_error(tmp_path, "imgs", blob, "0x00000803", "0x00000801", magic=IMAGES_MAGIC)


def test_nonzero_leading_bytes_and_unknown_type(tmp_path):
    good = to_idx_bytes(_labels())
    _expect_error(tmp_path, "a.idx", b"\x01" + good[1:], "two zero bytes", "0x01000801")
    _expect_error(tmp_path, "b.idx", good[:2] + b"\x07" + good[3:], "type code", "0x07")
    _expect_error(tmp_path, "c.idx", b"\x00\x00", "at least 4 bytes", "found 2")


def test_truncated_and_trailing(tmp_path):
    good = to_idx_bytes(_images())
    msg = _expect_error(tmp_path, "trunc.idx", good[:-10], "truncated")
    assert f"{5 * 28 * 28} bytes" in msg and f"found {5 * 28 * 28 - 10}" in msg
    _expect_error(tmp_path, "trail.idx", good + b"xyz", "3 trailing bytes")
    # header itself cut: 3 dimensions announced, only one present
    _expect_error(tmp_path, "head.idx", good[:8], "3 dimensions", "truncated")
    # empty file
    _expect_error(tmp_path, "empty.idx", b"", "found 0 bytes")


def test_corrupt_gzip(tmp_path):
    gz = gzip.compress(to_idx_bytes(_images()))
    _expect_error(tmp_path, "cut.gz", gz[: len(gz) // 2], "corrupt gzip")
    _expect_error(tmp_path, "bad.gz", gz[:20] + bytes(50) + gz[70:], "corrupt gzip")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nothere.idx: file not found"):
        read_idx(tmp_path / "nothere.idx")


def test_label_range_and_counts():
    labels = np.array([0, 9, 10, 3, 12], dtype=np.uint8)
    with pytest.raises(
        DataError, match=r"lab\.idx: expected labels in 0\.\.9, found 10 at index 2 \(2 labels"
    ):
        check_labels(labels, "lab.idx")
    check_labels(labels, "lab.idx", n_classes=13)
    with pytest.raises(DataError, match="lab.idx: expected 6 labels, found 5"):
        check_labels(labels, "lab.idx", n_classes=13, count=6)
    with pytest.raises(DataError, match="im.idx: expected images of 28x28 pixels, found 27x28"):
        check_images(np.zeros((2, 27, 28), np.uint8), "im.idx", shape=(28, 28))
    with pytest.raises(DataError, match="im.idx: expected 3 images, found 2"):
        check_images(np.zeros((2, 28, 28), np.uint8), "im.idx", count=3)


# -- a whole folder of files, read as the loader reads them ----------------------------------


def _folder(tmp_path, n_train=6, n_test=4, **overrides):
    """Write the four files of a tiny MNIST-format set; overrides replace a file's bytes."""
    blobs = {
        "train-images-idx3-ubyte": to_idx_bytes(_images(n_train, 1)),
        "train-labels-idx1-ubyte": to_idx_bytes(_labels(n_train, 1)),
        "t10k-images-idx3-ubyte": to_idx_bytes(_images(n_test, 2)),
        "t10k-labels-idx1-ubyte": to_idx_bytes(_labels(n_test, 2)),
    }
    for name, blob in blobs.items():
        blob = overrides.get(name.replace("-", "_"), blob)
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(blob))
    spec = download.RemoteSpec("tiny", mirrors=(), files=download.idx_files(None, None))
    return tmp_path, spec


def test_read_folder_ok(tmp_path):
    folder, spec = _folder(tmp_path)
    out = download.read_folder(folder, spec)
    assert out["train"][0].shape == (6, 28, 28) and out["train"][1].shape == (6,)
    assert out["test"][0].shape == (4, 28, 28) and out["test"][1].shape == (4,)


def test_read_folder_counts_disagree(tmp_path):
    folder, spec = _folder(tmp_path, train_labels_idx1_ubyte=to_idx_bytes(_labels(5, 1)))
    with pytest.raises(DataError) as e:
        download.read_folder(folder, spec)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz holds 6 images" in msg
    assert "train-labels-idx1-ubyte.gz holds 5 labels" in msg


def test_read_folder_label_out_of_range(tmp_path):
    bad = _labels(4, 2)
    bad[1] = 10
    folder, spec = _folder(tmp_path, t10k_labels_idx1_ubyte=to_idx_bytes(bad))
    with pytest.raises(
        DataError, match=r"t10k-labels-idx1-ubyte\.gz: expected labels in 0\.\.9, found 10"
    ):
        download.read_folder(folder, spec)


def test_read_folder_swapped_files(tmp_path):
    folder, spec = _folder(tmp_path, t10k_images_idx3_ubyte=to_idx_bytes(_labels(4, 2)))
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte\.gz: expected IDX magic 0x00000803"
    ):
        download.read_folder(folder, spec)


def test_read_folder_wrong_image_size(tmp_path):
    small = np.zeros((6, 8, 8), np.uint8)
    folder, spec = _folder(tmp_path, train_images_idx3_ubyte=to_idx_bytes(small))
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\.gz: expected images of 28x28 pixels, found 8x8"
    ):
        download.read_folder(folder, spec)
