"""COCO's own post-processing (cocopp) of the bbob runs' observer folders, offline.

The bbob runs write COCO's data format through cocoex's observer, one folder per job
(:mod:`casbo_bench.problems.bbob`). :func:`run_cocopp` hands them to cocopp, the COCO
platform's post-processing, which writes its HTML pages (``index.html``), runtime ECDFs and
aRT tables with dispersion, beside its bundled reference (the best algorithm of BBOB-2009).

- cocopp takes one folder per algorithm. The job folders are copied to
  ``<out_dir>/data/<algorithm>/<path>``, grouped by the ``algId`` their ``.info`` files carry
  (the method label), ``<path>`` being each folder's path below the folders' common parent,
  so cocopp reads exactly the folders given, under the method's name.
- cocopp names no archive here, and runs with the network closed
  (:func:`closed_network`): its ``archives`` download data sets from the web, and a folder
  argument that does not exist would be looked up there. Importing cocopp tries to reach its
  archive list online and warns when it cannot; those warnings are expected offline and are
  replaced by one log line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import socket
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from casbo_bench.errors import UserFacingError

logger = logging.getLogger(__name__)


class CocoDataError(UserFacingError, ValueError):
    """A folder given to cocopp holds no COCO data, or an output folder cannot be used."""


_ALGORITHM = re.compile(r"algId\s*=\s*'([^']*)'")

_ARCHIVE_WARNINGS = (
    r"failed to connect to .*",
    r"(?s)Failed fo find workable URL.*",
)
"""What importing cocopp warns when its online archive list cannot be reached (cocopp's own
spelling)."""


def folder_algorithm(folder: Path) -> str:
    """The algorithm (``algId``) of the COCO data in ``folder``, read from its ``.info`` files.

    Raises:
        CocoDataError: no ``.info`` file below ``folder``, one without an ``algId``, or
            ``.info`` files of several algorithms.
    """
    if not folder.is_dir():
        raise CocoDataError(
            f"{folder} is no folder; give the COCO folders `casbo-bench run --coco-folder` wrote"
        )
    found = set()
    for info in sorted(folder.rglob("*.info")):
        names = set(_ALGORITHM.findall(info.read_text(encoding="utf-8", errors="replace")))
        if not names:
            raise CocoDataError(f"{info} names no algId; it is no COCO .info file, remove it")
        found |= names
    if not found:
        raise CocoDataError(
            f"{folder} holds no COCO data (no .info file); give the COCO folders "
            f"`casbo-bench run --coco-folder` wrote"
        )
    if len(found) > 1:
        raise CocoDataError(
            f"{folder} holds COCO data of several algorithms ({', '.join(sorted(found))}); give "
            f"one job's folder per argument"
        )
    (algorithm,) = found
    if not algorithm or "/" in algorithm or algorithm in (".", ".."):
        raise CocoDataError(f"{folder}: algId {algorithm!r} cannot name a folder; rename it")
    return algorithm


def stage(folders: Sequence[Path], data_dir: Path) -> list[Path]:
    """Copy the job ``folders`` into ``data_dir/<algorithm>/<path>``; the algorithm folders,
    sorted by name (one cocopp argument each).

    ``<path>`` is a folder's path below the common parent of its algorithm's folders (its
    name when the algorithm has one), so distinct folders never land in the same place:
    ``coco/casbo/bbob-d2/bbob-f01_d2_s0`` and ``coco/casbo/bbob-d5/bbob-f01_d5_s0`` become
    ``data/casbo/bbob-d2/bbob-f01_d2_s0`` and ``data/casbo/bbob-d5/bbob-f01_d5_s0``.

    Raises:
        CocoDataError: a folder given twice, or one :func:`folder_algorithm` refuses.
    """
    absolute = [folder.absolute() for folder in folders]
    if len(set(absolute)) != len(absolute):
        raise CocoDataError("a COCO folder is given twice; give each job's folder once")
    by_algorithm: dict[str, list[Path]] = {}
    for folder in absolute:
        by_algorithm.setdefault(folder_algorithm(folder), []).append(folder)
    for algorithm, members in by_algorithm.items():
        parent = members[0].parent if len(members) == 1 else Path(os.path.commonpath(members))
        for folder in members:
            shutil.copytree(folder, data_dir / algorithm / folder.relative_to(parent))
    return [data_dir / algorithm for algorithm in sorted(by_algorithm)]


@contextlib.contextmanager
def closed_network() -> Iterator[None]:
    """Within the block, opening a socket or resolving a host name raises ``OSError``, so
    nothing (cocopp's archives above all) is fetched from the web."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("casbo-bench runs cocopp offline: the network is closed")

    class ClosedSocket(socket.socket):
        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            refuse()

    saved = (socket.socket, socket.create_connection, socket.getaddrinfo)
    socket.socket = ClosedSocket  # type: ignore[misc]
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    try:
        yield
    finally:
        socket.socket, socket.create_connection, socket.getaddrinfo = saved  # type: ignore[misc]


def import_cocopp() -> Any:
    """cocopp, imported with the network closed; its warnings about the unreachable archive
    list become one log line.

    Raises:
        CocoDataError: cocopp, or ``six`` (which cocopp imports without declaring it), is not
            installed.
    """
    found = {"cocopp": importlib.util.find_spec("cocopp"), "six": importlib.util.find_spec("six")}
    for name, spec in found.items():
        if spec is None:
            raise CocoDataError(
                f"{name} is not installed; install the package's pinned dependencies "
                f"(pip install -e . installs {name} too)"
            )
    with closed_network(), warnings.catch_warnings():
        for message in _ARCHIVE_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        import cocopp
    logger.info(
        "cocopp %s: its online archive list is not used (offline): only the local folders and "
        "its bundled reference data are read",
        cocopp.__version__,
    )
    return cocopp


def run_cocopp(folders: Sequence[Path], out_dir: Path) -> Path:
    """cocopp's HTML, ECDFs and aRT tables of the COCO job ``folders`` in ``out_dir``.

    Args:
        folders: observer folders (one job each), each holding one algorithm's COCO data.
        out_dir: a new or empty folder; receives ``data/`` (the staged copies, see
            :func:`stage`), cocopp's ``index.html`` and its comparison folder.

    Returns:
        The path of cocopp's ``index.html``.

    Raises:
        CocoDataError: no folder, a folder without COCO data, an ``out_dir`` that holds
            files, or cocopp writing no ``index.html``.
    """
    if not folders:
        raise CocoDataError("no COCO folder given; give the folders the bbob runs wrote")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise CocoDataError(
            f"{out_dir} already holds files (cocopp would add to them); remove it or name a "
            f"new folder"
        )
    algorithms = stage(folders, out_dir / "data")
    cocopp = import_cocopp()
    logger.info(
        "cocopp on %d folder(s) of %d algorithm(s): %s",
        len(folders),
        len(algorithms),
        ", ".join(folder.name for folder in algorithms),
    )
    # cocopp's ECDF legend cuts names to 9 characters (casbo-diag would read casbo-dia).
    longest = max(len(folder.name) for folder in algorithms)
    cocopp.genericsettings.len_of_names_in_pprldmany_legend = max(9, longest)
    with closed_network():
        cocopp.main(["-o", str(out_dir), *map(str, algorithms)])
    index = out_dir / "index.html"
    if not index.is_file():
        raise CocoDataError(f"cocopp wrote no {index}; read its output above for the reason")
    return index
