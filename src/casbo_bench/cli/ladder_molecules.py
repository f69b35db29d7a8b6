"""``casbo-bench ladder-molecules``: one predictor task's error-ladder molecules, judged twice."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from casbo_bench.cli.common import UsageError, integer_at_least, writable_file
from casbo_bench.names import DEVICE_NAMES

NAME = "ladder-molecules"
HELP = (
    "Draw a predictor task's error-ladder molecules (naive, n-atoms, unguided, each method's "
    "best) and judge each by the predictor and by calibrated GFN2-xTB."
)
EXAMPLES = (
    "casbo-bench ladder-molecules --task mol-alpha --target-percentile 90 "
    "--data results/data/qm9_heavy.npz --out results/default/molecules/ladder/mol-alpha.parquet "
    "results/default/molecules/raw/*/*.parquet",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="a predictor task (mol-alpha, ...)")
    parser.add_argument(
        "--target-percentile",
        type=integer_at_least(0),
        required=True,
        help="the target's percentile of QM9's property split, as the config states it; "
        "must be the task's",
    )
    parser.add_argument("--n-atoms", type=integer_at_least(1), default=9, help="heavy atoms")
    parser.add_argument(
        "--sampler-steps", type=integer_at_least(1), default=20, help="S of the unguided sampler"
    )
    parser.add_argument(
        "--molecules",
        type=integer_at_least(1),
        default=100,
        help="molecules of each baseline rung (default 100)",
    )
    parser.add_argument("--seed", type=integer_at_least(0), default=0, help="draw seed")
    parser.add_argument("--data", required=True, type=Path, help="the QM9 npz")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="stored models")
    parser.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="the xTB calibration folder (default MODELS_DIR/xtb_calibration)",
    )
    parser.add_argument("--device", choices=DEVICE_NAMES, default="cpu", help="torch device")
    parser.add_argument(
        "--out", required=True, type=writable_file(".parquet"), help="the molecules file"
    )
    parser.add_argument("traces", nargs="*", type=Path, metavar="TRACE.parquet")


def handle(arguments: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from casbo_bench.analysis.molecules import best_molecules
    from casbo_bench.devices import resolve_device
    from casbo_bench.files import sha256_file, write_atomically, write_text_atomically
    from casbo_bench.molecules import ladder
    from casbo_bench.molecules.checkpoint import (
        SAMPLING_FILE,
        edm_folder,
        load_predictor,
        load_sampler,
        predictor_folder,
    )
    from casbo_bench.molecules.data import load_dataset
    from casbo_bench.molecules.diffusion import FixedSizeSampler
    from casbo_bench.molecules.tasks import get_task
    from casbo_bench.molecules.xtb_calibration import load_calibration
    from casbo_bench.schemas.ladder import validate_ladder_molecules
    from casbo_bench.traces import load_traces

    start = time.perf_counter()
    task = get_task(arguments.task)
    if task.kind != "predictor":
        raise UsageError(f"{task.name} is not a predictor task; the ladder needs a target")
    if arguments.target_percentile != task.target_percentile:
        raise UsageError(
            f"{task.name} optimizes toward the p{task.target_percentile} target "
            f"(casbo_bench.molecules.tasks); --target-percentile {arguments.target_percentile} "
            f"would judge its molecules against another target"
        )
    calibration_dir = arguments.calibration or arguments.models_dir / "xtb_calibration"
    fit = load_calibration(calibration_dir).get(task.quantity)
    device = str(resolve_device(arguments.device, NAME, UsageError))
    predictor = load_predictor(predictor_folder(arguments.models_dir), device)
    manifest = predictor.manifest
    target = float(
        manifest["property_split_percentiles"][task.quantity][f"p{task.target_percentile}"]
    )
    dataset = load_dataset(arguments.data)
    model, checkpoint = load_sampler(edm_folder(arguments.models_dir), device)
    sampler = FixedSizeSampler(model.diffusion, arguments.n_atoms, arguments.sampler_steps)
    n, seed = arguments.molecules, arguments.seed
    frames = [
        ladder.rung_frame(
            task.name,
            ladder.NAIVE,
            "baseline",
            ladder.draw_dataset_rung(dataset, ladder.NAIVE, task.name, n, seed),
        ),
        ladder.rung_frame(
            task.name,
            ladder.N_ATOMS,
            "baseline",
            ladder.draw_dataset_rung(
                dataset, ladder.N_ATOMS, task.name, n, seed, n_atoms=arguments.n_atoms
            ),
        ),
        ladder.rung_frame(
            task.name,
            ladder.UNGUIDED,
            "baseline",
            ladder.draw_unguided_rung(sampler, task.name, n, seed),
        ),
    ]
    if arguments.traces:
        best = best_molecules(load_traces(arguments.traces))
        best = best[best["task"] == task.name]
        for method, runs in best.groupby("method", sort=True):
            frames.append(
                ladder.rung_frame(
                    task.name, str(method), "method", runs["xyz"].tolist(), runs["seed"]
                )
            )
    molecules = ladder.score_molecules(
        pd.concat(frames, ignore_index=True), predictor.model, task.quantity, target, fit
    )
    validate_ladder_molecules(molecules)
    write_atomically(arguments.out, lambda stream: molecules.to_parquet(stream, index=False))
    meta = {
        "task": task.name,
        "quantity": task.quantity,
        "unit": task.unit,
        "target_percentile": task.target_percentile,
        "target": target,
        "predictor_test_mae": float(manifest["test_mae"][task.quantity]["value"]),
        "xtb_fit_mae": fit.mae if fit is not None else float("nan"),
        "xtb_fit_n": fit.n if fit is not None else 0,
        "molecules_per_baseline_rung": n,
        "seed": seed,
        "n_atoms": arguments.n_atoms,
        "sampler_steps": arguments.sampler_steps,
        "data_sha256": sha256_file(arguments.data),
        "predictor_sha256": predictor.sha256,
        "checkpoint_sha256": checkpoint.sha256(SAMPLING_FILE),
        "calibration": str(calibration_dir),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    write_text_atomically(arguments.out.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    logger.info(
        "%s: %d molecules (%d scored, %d by xTB) in %.0f s -> %s",
        task.name,
        len(molecules),
        int(molecules["scorable"].sum()),
        int(molecules["xtb_ok"].sum()),
        meta["wall_seconds"],
        arguments.out,
    )
    return 0
