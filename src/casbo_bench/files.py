"""Writing files so that a reader, or a crash, sees the old content or the new, never half.

Every file the package writes (traces, tables, checkpoints, manifests, SDF) goes through
here: to a temporary name in the target's folder, flushed and synced, then renamed over the
target. ``mkstemp`` creates files private (0600); results and checkpoints are meant to be
shared, so they are made 0644 before the rename.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

SHARED_MODE = 0o644


def _staged(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path``: its descriptor and name (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.chmod(name, SHARED_MODE)
    return handle, Path(name)


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` through ``write(stream)`` (a binary stream) and rename it into place.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    target = Path(path)
    handle, temporary = _staged(target)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8, line endings as given) to ``path`` atomically."""
    return write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))


def write_all_or_nothing(documents: Mapping[Path, str]) -> list[Path]:
    """Write text files so that either all are replaced or none is.

    Every file is written to a temporary name first; only when all are written are they
    renamed into place, so a failure while writing leaves every earlier file as it was.

    Returns:
        The written paths, in the order given.
    """
    staged: dict[Path, Path] = {}
    try:
        for path, text in documents.items():
            handle, staged[path] = _staged(path)
            with os.fdopen(handle, "wb") as stream:
                stream.write(text.encode("utf-8"))
        for path, temporary in staged.items():
            os.replace(temporary, path)
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
    return list(documents)
