"""The one atomic file writer: a reader sees the old file or the complete new one, never a torn write.

Locally: write a temporary sibling (``.<name>.<random>.tmp``), flush and fsync it, ``os.replace`` it over the target,
then fsync the folder so the rename itself survives a power loss. Without the fsyncs a machine that dies right after
the rename can come back with an empty or partial file under the final name. On object stores (s3://, gs://) one PUT
is already atomic, so the object is written directly.

A process killed mid-write (SIGKILL, OOM, a lost node) leaves its temporary sibling behind; every local
``atomic_write`` therefore ends by deleting the temporaries in its folder older than ``STALE_AFTER_S``
(``remove_stale_temporaries``), so leftovers never pile up while a write in progress in another process is left alone.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"
STALE_AFTER_S = 3600.0  # a write in progress never takes this long; an older temporary is a killed writer's leftover


def is_local(path) -> bool:
    """True for plain paths and ``file://`` UPaths; False for object stores."""
    return getattr(path, "protocol", "") in ("", "file", "local")


def temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a binary handle whose content replaces ``path`` atomically (local or object store)."""
    if not is_local(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:  # a single PUT: readers never see a partial object
            write(handle)
        return
    local = Path(getattr(path, "path", path))
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(local)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, local)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(local.parent)
    remove_stale_temporaries(local.parent)


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def remove_stale_temporaries(folder, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete ``.<name>.<hex>.tmp`` files in ``folder`` (not recursive) last modified more than ``older_than_s`` ago;
    returns what was removed. Local folders only (object stores have no partial writes to clean)."""
    if not is_local(folder):
        return []
    folder = Path(getattr(folder, "path", folder))
    if not folder.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another process finished or cleaned it meanwhile
            continue
    return removed
