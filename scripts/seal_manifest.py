"""Seal the manifest of model folders written before manifests were sealed (a one-off).

Since manifests are sealed (docs/molecules.md, "Model files are verified"), a model folder
is read only when its ``manifest.json`` carries ``manifest_sha256``, the sha256 of the rest
of it. A folder trained before then (its manifest lists the sha256 of its files, but has no
seal) is sealed once with::

    python scripts/seal_manifest.py models/edm_qm9_heavy models/property_predictor

Each folder's files are checked against its manifest first (sha256 and size); only then is
the manifest rewritten with its seal. No weight or state file is touched, so every sha256 a
trace or a quality record holds stays valid. A folder whose manifest is sealed already is
checked and left as it is.

Exit status: 0 when every folder is sealed, 2 when one is refused (the line says why).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from casbo_bench.molecules.checkpoint import CheckpointError, seal_manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Seal each folder's manifest; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    arguments = parser.parse_args(argv)
    for folder in arguments.folders:
        try:
            sealed = seal_manifest(folder)
        except CheckpointError as error:
            print(f"seal_manifest.py: error: {error}", file=sys.stderr)
            return 2
        print(f"{folder}: {'sealed' if sealed else 'already sealed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
