"""The IDX file format (MNIST, Fashion-MNIST), read with explicit checks.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the
values in C order, big-endian:

    byte 0, 1   0x00 0x00
    byte 2      type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                           0x0D float32, 0x0E float64
    byte 3      number of dimensions (ndim)
    4*ndim      the dimensions, big-endian uint32
    payload     prod(dims) values

MNIST images are 0x00000803 (uint8, 3-D: N x 28 x 28); labels are 0x00000801 (uint8,
1-D: N). Files may be gzip-compressed or raw: we look at the first two bytes
(0x1f 0x8b), not at the file name. Every problem raises ``DataError`` naming the
file, what was expected and what was found; nothing here uses ``assert``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A dataset file or array that is missing, corrupt or not what it should be."""


# IDX type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The decompressed bytes of an IDX file, gzip-compressed or raw."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if blob[:2] != _GZIP_MAGIC:
        return blob
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt gzip data ({e or type(e).__name__})") from None


def parse_idx(
    buf: bytes, source: str | os.PathLike = "<bytes>", magic: int | None = None
) -> np.ndarray:
    """Parse decompressed IDX bytes into a native-endian array of the header's shape.

    ``source`` names the file in error messages. ``magic``, if given, is the exact
    4-byte magic number required (e.g. ``IMAGES_MAGIC``); it is checked before
    anything else. The payload must have exactly the size the header announces: a
    short payload means a truncated file, a longer one trailing bytes; both are errors.
    """
    if len(buf) < 4:
        raise DataError(
            f"{source}: expected an IDX header of at least 4 bytes, found {len(buf)} bytes"
        )
    found = int.from_bytes(buf[:4], "big")
    if magic is not None and found != magic:
        raise DataError(
            f"{source}: expected IDX magic 0x{magic:08x} ({_describe(magic)}), found 0x{found:08x}"
        )
    if buf[0] != 0 or buf[1] != 0:
        raise DataError(
            f"{source}: expected an IDX magic number starting with two zero bytes, "
            f"found 0x{found:08x}; not an IDX file"
        )
    code, ndim = buf[2], buf[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise DataError(f"{source}: expected an IDX type code in ({known}), found 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(
            f"{source}: the header announces {ndim} dimensions ({header} header bytes), "
            f"but the file has only {len(buf)} bytes (truncated)"
        )
    dims = tuple(int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[code]
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(buf) - header
    if have != need:
        what = "truncated" if have < need else f"{have - need} trailing bytes"
        raise DataError(
            f"{source}: the header's dimensions {dims} need a payload of {need} bytes, "
            f"found {have} bytes ({what})"
        )
    arr = np.frombuffer(buf, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a NumPy array (uint8 for MNIST files).

    The array has the shape of the header, native byte order, and may be read-only
    (it views the file's bytes); copy it before writing into it. ``magic``: see
    ``parse_idx``. Raises DataError naming the file on any problem.
    """
    return parse_idx(read_idx_bytes(path), Path(path), magic)


def check_images(
    arr: np.ndarray, source, shape: tuple[int, int] | None = None, count: int | None = None
) -> None:
    """Check images parsed with ``magic=IMAGES_MAGIC``: (rows, cols) == shape, N == count."""
    if arr.dtype != np.uint8 or arr.ndim != 3:
        raise DataError(
            f"{source}: expected uint8 images of 3 dimensions, found {arr.dtype} of {arr.ndim}"
        )
    if shape is not None and arr.shape[1:] != tuple(shape):
        raise DataError(
            f"{source}: expected images of {shape[0]}x{shape[1]} pixels, "
            f"found {arr.shape[1]}x{arr.shape[2]}"
        )
    if count is not None and arr.shape[0] != count:
        raise DataError(f"{source}: expected {count} images, found {arr.shape[0]}")


def check_labels(arr: np.ndarray, source, n_classes: int = 10, count: int | None = None) -> None:
    """Check labels parsed with ``magic=LABELS_MAGIC``: all in 0..n_classes-1, N == count."""
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise DataError(
            f"{source}: expected uint8 labels of 1 dimension, found {arr.dtype} of {arr.ndim}"
        )
    if count is not None and arr.shape[0] != count:
        raise DataError(f"{source}: expected {count} labels, found {arr.shape[0]}")
    bad = np.flatnonzero(arr >= n_classes)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{source}: expected labels in 0..{n_classes - 1}, found {int(arr[i])} at index {i} "
            f"({bad.size} labels out of range)"
        )


def check_pair(images: np.ndarray, labels: np.ndarray, images_source, labels_source) -> None:
    """Images and labels of one split must be equally many."""
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_source} holds {images.shape[0]} images but {labels_source} holds "
            f"{labels.shape[0]} labels; the counts must match"
        )


def _describe(magic: int) -> str:
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    dtype = IDX_TYPES.get(code)
    return f"{dtype.newbyteorder('=') if dtype is not None else 'unknown type'}, {ndim} dimensions"


def to_idx_bytes(arr: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (the inverse of ``parse_idx``); used to write test data."""
    arr = np.asarray(arr)
    code = next(
        (c for c, d in IDX_TYPES.items() if d.newbyteorder("=") == arr.dtype.newbyteorder("=")),
        None,
    )
    if code is None:
        raise TypeError(
            f"cannot encode dtype {arr.dtype} as IDX; "
            f"use one of {[str(d) for d in IDX_TYPES.values()]}"
        )
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes()
