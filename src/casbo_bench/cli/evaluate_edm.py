"""``casbo-bench evaluate-edm``: the quality of the pre-trained EDM's unguided samples.

Draws ``--samples`` unguided molecules with the full sampler (or a respaced one of
``--steps`` steps), rebuilds them and writes their stability, validity, uniqueness and
novelty as JSON, beside the same metrics on real QM9 of ``--reference-split``
(:mod:`casbo_bench.molecules.evaluate`); ``--csv`` adds one row per sample.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from casbo_bench.cli.common import UsageError, integer_at_least, writable_file
from casbo_bench.names import DEVICE_NAMES

NAME = "evaluate-edm"
HELP = (
    "Sample unguided molecules from the heavy-atom EDM checkpoint and measure atom and "
    "molecule stability, RDKit validity, uniqueness and novelty, beside real QM9's."
)
EXAMPLES = (
    "casbo-bench evaluate-edm --data results/data/qm9_heavy.npz --samples 1000 "
    "--out results/molecules/quality.json",
    "casbo-bench evaluate-edm --models-dir models --samples 200 --steps 50 --device cpu "
    "--out quality.json --csv samples.csv --record-in-manifest",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="folder of the stored model folders (default: models in the current folder)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="checkpoint folder with sampling.pt and manifest.json (default: "
        "MODELS_DIR/edm_qm9_heavy)",
    )
    parser.add_argument(
        "--data", type=Path, default=Path("results/data/qm9_heavy.npz"), help="cached QM9 npz"
    )
    parser.add_argument(
        "--samples", type=integer_at_least(0), default=1000, help="unguided samples (0: none)"
    )
    parser.add_argument(
        "--steps",
        type=integer_at_least(1),
        default=None,
        help="respaced sampler steps S (default: all T)",
    )
    parser.add_argument(
        "--seed", type=integer_at_least(0), default=0, help="seed of the sampling noise"
    )
    parser.add_argument(
        "--batch-size", type=integer_at_least(1), default=500, help="molecules per forward pass"
    )
    parser.add_argument("--device", default="auto", choices=DEVICE_NAMES, help="default auto")
    parser.add_argument("--threads", type=integer_at_least(1), help="torch CPU threads")
    parser.add_argument(
        "--reference-split",
        default="test",
        help="QM9 split whose real geometries give the metrics' ceiling: generative, "
        "property, validation or test (default), or 'none' to skip (a name the data file "
        "lacks is refused before any sampling)",
    )
    parser.add_argument(
        "--xtb-samples",
        type=integer_at_least(0),
        default=0,
        help="run GFN2-xTB on this many valid samples and report time and mean properties",
    )
    parser.add_argument(
        "--out", type=writable_file(".json"), required=True, help="JSON file of metrics"
    )
    parser.add_argument(
        "--csv", type=writable_file(".csv"), default=None, help="CSV file, one row per sample"
    )
    parser.add_argument(
        "--record-in-manifest",
        action="store_true",
        help="also write the metrics into the checkpoint's manifest.json (entry 'quality'), "
        "refused if the checkpoint changed while it was measured",
    )


def handle(arguments: argparse.Namespace) -> int:
    import torch

    from casbo_bench.devices import resolve_device
    from casbo_bench.files import write_text_atomically
    from casbo_bench.molecules.checkpoint import (
        MANIFEST_FILE,
        CheckpointError,
        edm_folder,
        record_quality,
    )
    from casbo_bench.molecules.data import load_dataset
    from casbo_bench.molecules.evaluate import (
        evaluate,
        quality_entry,
        sample_rows,
        write_sample_rows,
    )
    from casbo_bench.provenance import collect

    checkpoint = arguments.checkpoint or edm_folder(arguments.models_dir)
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    device = resolve_device(arguments.device, NAME, UsageError)
    dataset = load_dataset(arguments.data)
    settings: dict[str, Any] = {
        key: value
        for key, value in vars(arguments).items()
        if key not in ("command", "module", "debug")
    }
    evaluation = evaluate(
        dataset,
        checkpoint,
        arguments.samples,
        seed=arguments.seed,
        n_steps=arguments.steps,
        batch_size=arguments.batch_size,
        device=device,
        reference_split=None if arguments.reference_split == "none" else arguments.reference_split,
        xtb_samples=arguments.xtb_samples,
        provenance=collect(None, {**settings, "checkpoint": checkpoint, "device": str(device)}),
    )
    result = evaluation.result
    write_text_atomically(arguments.out, json.dumps(result, indent=2) + "\n")
    if arguments.record_in_manifest and evaluation.rebuilt:
        try:
            record_quality(
                checkpoint, quality_entry(result), result["checkpoint"]["sampling_sha256"]
            )
        except CheckpointError as error:
            raise CheckpointError(f"{error} (the metrics are in {arguments.out})") from None
        logger.info("recorded the metrics in %s", checkpoint / MANIFEST_FILE)
    if arguments.csv is not None and evaluation.rebuilt:
        write_sample_rows(
            arguments.csv, sample_rows(evaluation.rebuilt, evaluation.reference_smiles)
        )
    logger.info(
        "wrote %s",
        arguments.out if arguments.csv is None else f"{arguments.out} and {arguments.csv}",
    )
    return 0
