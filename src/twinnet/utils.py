"""Small helpers shared across twinnet: atomic file writes.

A file written with ``atomic_write`` or ``atomic_open`` either keeps its old content
or has the complete new content, never half of it: the data goes to a temporary file
in the same folder, is flushed and fsync'ed, then renamed over the target with
``os.replace`` (atomic on POSIX and Windows within one file system). If anything
fails before the rename, the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# the process umask, read once at import (os.umask can only be read by setting it);
# mkstemp creates files 0600, we give the final file the usual 0666 & ~umask
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str = "utf-8") -> Iterator[IO]:
    """Open ``path`` for writing so that it is replaced atomically on success.

    ``mode`` is "wb" (bytes) or "w" (text, ``encoding``). The parent folder must
    exist. The target appears under its name only when the ``with`` block ends
    without an exception; on an exception the temporary file is deleted and the
    exception propagates. Inside the block, ``f.name`` is the temporary file's path
    (flush first if you want to read it back).

        with atomic_open("out/log.txt", "w") as f:
            f.write("hello\\n")
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)  # reopened by name below, so that f.name is the temp path
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        kwargs = {"encoding": encoding} if mode == "w" else {}
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` (bytes) to ``path`` atomically: temp file in the same folder,
    flush, fsync, ``os.replace``. The parent folder must exist.

    Then removes the temp files of ``path`` that a process killed in the middle of an
    earlier write left behind (``.<name>.*.tmp``). That assumes one writer per file, as
    in a run folder; ``atomic_open`` (used for downloads, which two processes may run at
    once) leaves other temp files alone.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write data must be bytes, got {type(data).__name__}")
    with atomic_open(path, "wb") as f:
        f.write(data)
    _remove_orphan_temp_files(path)


def _remove_orphan_temp_files(path: str | os.PathLike) -> None:
    """Delete the ``.<name>.*.tmp`` files next to ``path``, which is how ``atomic_open``
    names its temp files. They never shadow the real file (it is only read under its own
    name), but each holds a partial copy's worth of disk space."""
    path = Path(path)
    for orphan in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            orphan.unlink()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort, a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
