"""``casbo-bench cocopp``: COCO's post-processing (cocopp) of bbob observer folders, offline."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import writable_folder

NAME = "cocopp"
HELP = "Run COCO's cocopp on the COCO folders of bbob runs, offline: its HTML, ECDFs, aRT tables."
DESCRIPTION = (
    "Runs cocopp, the COCO platform's post-processing, on the observer folders that "
    "`casbo-bench run --coco-folder` wrote (one per job). The folders are grouped by the "
    "algorithm their COCO data name (the method label) and copied to OUT/data/<method>/, one "
    "cocopp argument per method; cocopp then writes OUT/index.html, its runtime ECDFs and "
    "aRT tables with dispersion, beside its bundled reference (best of BBOB-2009). Offline: "
    "no data archive is named and the network is closed while cocopp runs."
)
EXAMPLES = (
    "casbo-bench cocopp --out-dir results/bbob/cocopp results/bbob/coco/*/*/*",
    "casbo-bench cocopp --out-dir cocopp-f08 coco/cmaes/bbob-f08_d5 coco/casbo/bbob-f08_d5",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir",
        required=True,
        type=writable_folder("cocopp output"),
        help="a new or empty folder for cocopp's output (index.html)",
    )
    parser.add_argument(
        "folders", nargs="+", type=Path, metavar="FOLDER", help="COCO observer folders"
    )


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench.analysis.coco import run_cocopp

    index = run_cocopp(arguments.folders, arguments.out_dir)
    logger.info("cocopp wrote %s", index)
    return 0
