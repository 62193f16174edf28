"""Writing a file so that a crash leaves the old one or the new one (`atomic_write`), and recognising the
half-written temporary files of a writer that was killed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from baas.store.names import StoreError

TMP_SUFFIX = ".tmp"


def writer_gone(tmp: Path) -> bool:
    """Whether the process that wrote the temporary file `.<name>.<pid>.<random>.tmp` is no longer running
    (on this machine); a file without a pid in its name is left alone."""
    parts = tmp.name.split(".")
    pid = parts[-3] if len(parts) >= 4 else ""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but another user's
        return False
    return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """write(f) into a temporary file beside `path`, fsync, rename over `path`, fsync the folder.
    A failed write (a full disk, a read-only folder) leaves `path` as it was and raises a StoreError."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would make it (mkstemp's files are private to their owner)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StoreError(f"{path}: cannot write ({exc.strerror or exc}); the store keeps what it had") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
