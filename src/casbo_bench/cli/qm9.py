"""``casbo-bench qm9``: cache QM9's heavy-atom molecules from qm9pack as one npz file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import integer_at_least, writable_file

NAME = "qm9"
HELP = "Cache QM9's heavy-atom molecules from qm9pack as one npz file (or a seeded subset of one)."
EXAMPLES = (
    "casbo-bench qm9 --out results/data/qm9_heavy.npz",
    "casbo-bench qm9 --subset-of results/data/qm9_heavy.npz --out tests/data/qm9_subset.npz "
    "--size 1000 --seed 0",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, type=writable_file(".npz"), help="the npz file to write"
    )
    parser.add_argument(
        "--seed", type=integer_at_least(0), default=0, help="split seed (or subset seed)"
    )
    parser.add_argument(
        "--subset-of", type=Path, default=None, help="draw a subset of this cached file instead"
    )
    parser.add_argument("--size", type=integer_at_least(1), default=1000, help="subset size")


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench.molecules.data import build_dataset, build_subset

    if arguments.subset_of is not None:
        dataset = build_subset(
            arguments.subset_of, arguments.out, size=arguments.size, seed=arguments.seed
        )
    else:
        dataset = build_dataset(arguments.out, seed=arguments.seed)
    megabytes = arguments.out.stat().st_size / 1e6
    logger.info("wrote %d molecules to %s (%.1f MB)", len(dataset), arguments.out, megabytes)
    return 0
