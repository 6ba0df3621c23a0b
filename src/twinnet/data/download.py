"""Finding, downloading and verifying the IDX datasets (MNIST, Fashion-MNIST).

Lookup order for a dataset NAME (first folder holding all four files wins):

    1. the ``data_dir`` argument (``--data-dir``): the folder itself, then data_dir/NAME/
    2. $TWINNET_DATA/NAME/
    3. the user cache: $XDG_CACHE_HOME/twinnet/NAME/, by default ~/.cache/twinnet/NAME/
    4. a download from the dataset's public mirrors into the user cache

Each file may be stored gzip-compressed (``NAME.gz``) or raw. Integrity:

- MNIST: the SHA-256 of the *decompressed* IDX bytes is checked for every file, local
  or downloaded (gzip headers differ between copies of the same data, so a hash of
  the .gz would reject good copies).
- Fashion-MNIST: we have no SHA-256 of the decompressed files offline, so downloads
  are checked against the MD5 of the .gz files as published by torchvision; local
  files (which may have been recompressed) are validated structurally only.
- Every file, always: the IDX structure (magic, dimensions, payload size, label range,
  matching counts), see ``idx.py``.

Downloads stream into a temporary file in the cache folder (with a tqdm progress bar),
are verified, and only then renamed into place: a failed or corrupt download leaves
nothing behind. Mirrors can be overridden with the ``mirrors`` argument or with the
environment variable TWINNET_MIRRORS (base URLs separated by commas or spaces), which
is how the tests point the downloader at a local server.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinnet.data.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    DataError,
    check_images,
    check_labels,
    check_pair,
    parse_idx,
    read_idx_bytes,
)
from twinnet.utils import atomic_open


@dataclass(frozen=True)
class FileSpec:
    """One IDX file of a dataset. ``name`` is without ".gz"."""

    name: str
    split: str  # "train" or "test"
    kind: str  # "images" or "labels"
    count: int | None = None  # expected number of images/labels, None: any
    sha256: str | None = None  # of the decompressed IDX bytes
    md5_gz: str | None = None  # of the .gz file as the mirrors publish it


@dataclass(frozen=True)
class RemoteSpec:
    """An IDX dataset: its files, its mirrors (base URLs), image size and classes."""

    name: str
    mirrors: tuple[str, ...]
    files: tuple[FileSpec, ...]
    image_shape: tuple[int, int] = (28, 28)
    n_classes: int = 10


def idx_files(
    n_train: int,
    n_test: int,
    sha256: dict[str, str] | None = None,
    md5_gz: dict[str, str] | None = None,
) -> tuple[FileSpec, ...]:
    """The four files of an MNIST-format dataset with their counts and checksums."""
    sha256, md5_gz = sha256 or {}, md5_gz or {}
    layout = [
        ("train-images-idx3-ubyte", "train", "images", n_train),
        ("train-labels-idx1-ubyte", "train", "labels", n_train),
        ("t10k-images-idx3-ubyte", "test", "images", n_test),
        ("t10k-labels-idx1-ubyte", "test", "labels", n_test),
    ]
    return tuple(FileSpec(f, s, k, n, sha256.get(f), md5_gz.get(f)) for f, s, k, n in layout)


# SHA-256 of the decompressed MNIST files (../shared/datasets/mnist/SHA256SUMS.raw)
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# MD5 of the Fashion-MNIST .gz files as published (torchvision's FashionMNIST.resources).
# We have no SHA-256 of the decompressed files offline; MD5 catches corrupt or
# truncated downloads, which is what it is for here (not tampering).
FASHION_MD5_GZ = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}

REMOTE: dict[str, RemoteSpec] = {
    "mnist": RemoteSpec(
        "mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        files=idx_files(60000, 10000, sha256=MNIST_SHA256),
    ),
    "fashion-mnist": RemoteSpec(
        "fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        files=idx_files(60000, 10000, md5_gz=FASHION_MD5_GZ),
    ),
}


def remote_spec(name: str) -> RemoteSpec:
    """The spec of a downloadable dataset; ValueError for any other name."""
    if name not in REMOTE:
        raise ValueError(
            f"dataset {name!r} has no files to fetch; fetchable datasets: {', '.join(REMOTE)}"
        )
    return REMOTE[name]


def default_cache_dir() -> Path:
    """The user cache root: $XDG_CACHE_HOME/twinnet if set, else ~/.cache/twinnet."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "twinnet"


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` (raw) or ``folder/name.gz``, whichever exists (raw first)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_files(folder: Path, spec: RemoteSpec) -> list[str]:
    """Names of the spec's files that are in ``folder`` neither raw nor gzipped."""
    return [f.name for f in spec.files if find_file(folder, f.name) is None]


def locate(name: str, data_dir: str | os.PathLike | None = None) -> tuple[Path | None, list[str]]:
    """The first folder in the lookup order holding all files of dataset ``name``.

    Returns (folder or None, a description of every place searched), the latter for
    the error message when nothing is found.
    """
    spec = remote_spec(name)
    candidates: list[Path | str] = []  # a str is a note for the message, not a folder
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        candidates += [d, d / name]
    env = os.environ.get("TWINNET_DATA", "")
    candidates.append(
        Path(env).expanduser() / name if env else f"$TWINNET_DATA/{name} (TWINNET_DATA not set)"
    )
    candidates.append(default_cache_dir() / name)
    searched: list[str] = []
    for folder in candidates:
        if isinstance(folder, str):
            searched.append(folder)
        elif not folder.is_dir():
            searched.append(f"{folder} (no such folder)")
        elif missing := missing_files(folder, spec):
            searched.append(f"{folder} (missing {', '.join(missing)})")
        else:
            return folder, searched
    return None, searched


def verified_bytes(path: Path, spec: FileSpec) -> bytes:
    """The decompressed bytes of ``path``, checked against ``spec.sha256`` when known."""
    raw = read_idx_bytes(path)
    if spec.sha256 is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != spec.sha256:
            raise DataError(
                f"{path}: SHA-256 of the decompressed IDX data is {actual}, "
                f"expected {spec.sha256}; the file is corrupt or not the official one "
                f"(delete it, or run `twinnet data fetch`)"
            )
    return raw


def read_folder(
    folder: str | os.PathLike, spec: RemoteSpec
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read and verify all files of ``spec`` in ``folder``.

    Returns {"train": (images, labels), "test": (images, labels)} with images
    (N, rows, cols) uint8 and labels (N,) uint8. Raises DataError naming the file on
    a checksum mismatch or any structural problem.
    """
    folder = Path(folder)
    arrays: dict[tuple[str, str], tuple[np.ndarray, Path]] = {}
    for f in spec.files:
        path = find_file(folder, f.name)
        if path is None:
            raise DataError(f"{spec.name}: file {f.name}(.gz) not found in {folder}")
        arr = parse_file(verified_bytes(path, f), path, f, spec)
        arrays[(f.split, f.kind)] = (arr, path)
    out = {}
    for split in ("train", "test"):
        (images, ipath), (labels, lpath) = arrays[(split, "images")], arrays[(split, "labels")]
        check_pair(images, labels, ipath, lpath)
        out[split] = (images, labels)
    return out


def mirrors_for(spec: RemoteSpec, mirrors=None) -> list[str]:
    """Base URLs to try, in order: the ``mirrors`` argument, $TWINNET_MIRRORS, the spec's."""
    if mirrors is None:
        env = os.environ.get("TWINNET_MIRRORS", "").replace(",", " ").split()
        mirrors = env or spec.mirrors
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    mirrors = list(mirrors)
    for m in mirrors:
        if not isinstance(m, str) or not m.startswith(("http://", "https://", "file://")):
            raise ValueError(f"mirrors must be http(s):// or file:// base URLs, got {m!r}")
    if not mirrors:
        raise ValueError(f"no mirrors to download {spec.name} from")
    return mirrors


def fetch(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    mirrors=None,
    progress: bool | None = None,
    timeout: float = 30.0,
) -> Path:
    """Make sure dataset ``name`` is in the cache, verified; return its folder.

    The folder is ``cache_dir/name`` (``cache_dir`` defaults to ``default_cache_dir()``).
    Files already there that pass verification are kept; missing or corrupt ones are
    downloaded from the mirrors in order (a mirror that fails, 404s or serves a file
    with the wrong checksum is skipped), each verified before it is renamed into
    place. ``progress``: show tqdm bars (None: only on a terminal).
    Raises ValueError for a dataset that is not downloadable, DataError when a file
    cannot be obtained from any mirror (the message lists each attempt).
    """
    spec = remote_spec(name)
    urls = mirrors_for(spec, mirrors)
    folder = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / name
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for f in spec.files:
            existing = find_file(folder, f.name)
            if existing is not None and _is_valid(existing, f, spec):
                continue
            _download(f, spec, folder, urls, progress, timeout)
            if existing is not None and existing != folder / f"{f.name}.gz":
                existing.unlink()  # a corrupt raw copy would shadow the new .gz
    except BaseException:
        if created and not any(folder.iterdir()):
            folder.rmdir()  # leave no empty folder behind a failed first download
        raise
    read_folder(folder, spec)  # structure and counts of the whole set
    return folder


def parse_file(raw: bytes, source, f: FileSpec, spec: RemoteSpec) -> np.ndarray:
    """Parse one file's decompressed bytes and check its structure against the spec."""
    if f.kind == "images":
        arr = parse_idx(raw, source, magic=IMAGES_MAGIC)
        check_images(arr, source, shape=spec.image_shape, count=f.count)
    else:
        arr = parse_idx(raw, source, magic=LABELS_MAGIC)
        check_labels(arr, source, n_classes=spec.n_classes, count=f.count)
    return arr


def _is_valid(path: Path, f: FileSpec, spec: RemoteSpec) -> bool:
    try:
        parse_file(verified_bytes(path, f), path, f, spec)
    except DataError:
        return False
    return True


def _download(
    f: FileSpec, spec: RemoteSpec, folder: Path, urls: list[str], progress, timeout: float
) -> None:
    """Download ``f.name.gz`` from the first mirror that serves a verified copy."""
    import http.client
    import urllib.error

    dest = folder / f"{f.name}.gz"
    errors = []
    for base in urls:
        url = base.rstrip("/") + "/" + dest.name
        try:
            _download_one(url, dest, f, spec, progress, timeout)
            return
        except urllib.error.HTTPError as e:
            errors.append(f"{url}: HTTP {e.code} {e.reason}")
        except (OSError, http.client.HTTPException, DataError) as e:
            reason = getattr(e, "reason", None) or e
            errors.append(f"{url}: {reason}")
    raise DataError(
        f"could not download {dest.name} of {spec.name}; tried:\n  " + "\n  ".join(errors)
    )


def _download_one(
    url: str, dest: Path, f: FileSpec, spec: RemoteSpec, progress, timeout: float
) -> None:
    """Stream ``url`` into a temp file beside ``dest``, verify it, rename it into place."""
    import urllib.request

    from tqdm.auto import tqdm

    md5 = hashlib.md5(usedforsecurity=False)  # an integrity check, not security
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=dest.name,
            disable=None if progress is None else not progress,
            leave=False,
        )
        received = 0
        with bar, atomic_open(dest, "wb") as out:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                md5.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            out.flush()
            if total is not None and received != total:
                raise DataError(f"received {received} of {total} bytes (connection cut)")
            if f.md5_gz is not None and md5.hexdigest() != f.md5_gz:
                raise DataError(f"MD5 of the download is {md5.hexdigest()}, expected {f.md5_gz}")
            # gzip integrity, decompressed SHA-256 and structure, read back from the temp file
            try:
                raw = read_idx_bytes(out.name)
            except DataError:
                raise DataError("not valid gzip data") from None
            actual = hashlib.sha256(raw).hexdigest()
            if f.sha256 is not None and actual != f.sha256:
                raise DataError(
                    f"SHA-256 of the decompressed data is {actual}, expected {f.sha256}"
                )
            parse_file(raw, dest.name, f, spec)
