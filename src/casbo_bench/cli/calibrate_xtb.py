"""``casbo-bench calibrate-xtb``: map GFN2-xTB to QM9's DFT units by a line per property."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import bounded_number, integer_at_least, writable_folder

NAME = "calibrate-xtb"
HELP = (
    "Fit GFN2-xTB's alpha (finite field), HOMO-LUMO gap and dipole to QM9's DFT values on "
    "seeded QM9 molecules; write the fits with a sealed manifest."
)
EXAMPLES = (
    "casbo-bench calibrate-xtb --data results/data/qm9_heavy.npz --out models/xtb_calibration "
    "--n 2000 --seed 0",
    "casbo-bench calibrate-xtb --data tests/data/qm9_subset.npz --out /tmp/calibration --n 20 "
    "--n-alpha 5",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="the QM9 npz (casbo-bench qm9)")
    parser.add_argument(
        "--out",
        type=writable_folder("calibration"),
        default=Path("models/xtb_calibration"),
        help="the calibration folder (default models/xtb_calibration)",
    )
    parser.add_argument(
        "--n", type=integer_at_least(3), default=2000, help="molecules fitted (default 2000)"
    )
    parser.add_argument("--seed", type=integer_at_least(0), default=0, help="draw seed")
    parser.add_argument(
        "--split",
        default="test",
        choices=("test", "validation", "property", "generative"),
        help="the QM9 split drawn from (default test)",
    )
    parser.add_argument(
        "--n-alpha",
        type=integer_at_least(0),
        default=None,
        help="molecules (the first of the draw) that also get the finite-field alpha, six "
        "more single points each (default: all n; 0 skips alpha)",
    )
    parser.add_argument(
        "--field-step",
        type=bounded_number(lambda value: 0 < value < 0.05, "in (0, 0.05)"),
        default=1e-3,
        help="finite field in atomic units (default 1e-3)",
    )


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench.molecules.data import load_dataset
    from casbo_bench.molecules.xtb_calibration import calibrate

    dataset = load_dataset(arguments.data)

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            logger.info("%d/%d molecules", done, total)

    record = calibrate(
        dataset,
        arguments.out,
        arguments.data,
        n=arguments.n,
        seed=arguments.seed,
        split=arguments.split,
        n_alpha=arguments.n_alpha,
        field_step=arguments.field_step,
        progress=progress,
    )
    for name, fit in record["fits"].items():
        logger.info(
            "%s: DFT = %.4f xTB + %.4f (n %d, MAE %.4f %s, R^2 %.3f)",
            name,
            fit["slope"],
            fit["intercept"],
            fit["n"],
            fit["mae"],
            fit["unit"],
            fit["r2"],
        )
    logger.info("wrote %s", arguments.out)
    return 0
