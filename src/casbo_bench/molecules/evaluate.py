"""Quality of the pre-trained EDM: unguided samples, their metrics, and real QM9's ceiling.

``casbo-bench evaluate-edm`` (:mod:`casbo_bench.cli.evaluate_edm`) runs :func:`evaluate`:
it draws unguided molecules (atom counts from the training histogram, every noise standard
Gaussian from one seeded generator) with the full sampler, or a respaced one; rebuilds each
with :mod:`casbo_bench.molecules.rebuild`; and measures them with
:mod:`casbo_bench.molecules.metrics`, beside the same metrics on QM9's real geometries of a
reference split (the ceiling the metrics allow) and EDM's published figures (which count
explicit hydrogens: not comparable like for like). :func:`sample_rows` gives one row per
sample (SMILES, validity, stability, QED); :func:`quality_entry` is what
:func:`casbo_bench.molecules.checkpoint.record_quality` stores in the checkpoint's manifest.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from casbo_bench.files import write_text_atomically
from casbo_bench.molecules.checkpoint import SAMPLING_FILE, PretrainedModel, load_sampler
from casbo_bench.molecules.data import MoleculeDataset
from casbo_bench.molecules.diffusion import MoleculeSamples
from casbo_bench.molecules.metrics import (
    EDM_PUBLISHED_WITH_HYDROGENS,
    QualityReport,
    quality_report,
    rebuild_dataset,
    smiles_agreement,
    stable_atoms,
    training_smiles,
)
from casbo_bench.molecules.rebuild import RebuiltMolecule, rebuild_batch
from casbo_bench.molecules.scores import qed_scores, xtb_properties

logger = logging.getLogger(__name__)

HEAVY_ATOM_NOTE = (
    "heavy-atom metrics (implicit hydrogens); EDM's published figures count explicit "
    "hydrogens and are not comparable like for like"
)


def sample_unguided(
    model: PretrainedModel,
    n_samples: int,
    seed: int,
    n_steps: int | None = None,
    batch_size: int = 500,
) -> MoleculeSamples:
    """``n_samples`` unguided molecules: atom counts from the training histogram, all noise
    from ``torch.Generator().manual_seed(seed)`` on the CPU (so samples do not depend on the
    device); ``n_steps`` respaces the sampler (None: the full T steps)."""
    generator = torch.Generator().manual_seed(seed)
    return model.diffusion.sample(
        n_samples,
        model.atom_count_histogram,
        generator,
        n_steps=n_steps,
        batch_size=batch_size,
    )


def rebuild_samples(samples: MoleculeSamples) -> list[RebuiltMolecule]:
    """Rebuild every sampled molecule (padding rows are dropped by the rebuild)."""
    return rebuild_batch(
        samples.positions.detach().cpu().double().numpy(),
        samples.atom_types.detach().cpu().numpy(),
    )


def sample_rows(
    rebuilt: Sequence[RebuiltMolecule], reference: frozenset[str] | None
) -> list[dict[str, Any]]:
    """One row per sample: size, validity, fragments, stability, novelty against
    ``reference`` (None where unknown), QED, SMILES and the rebuild's reason."""
    qed = qed_scores(rebuilt)
    rows = []
    for index, molecule in enumerate(rebuilt):
        stable = stable_atoms(molecule)
        rows.append(
            {
                "index": index,
                "n_atoms": molecule.n_atoms,
                "valid": molecule.ok,
                "n_fragments": molecule.n_fragments,
                "n_stable_atoms": int(stable.sum()),
                "molecule_stable": bool(len(stable) and stable.all()),
                "novel": (
                    None
                    if reference is None or not molecule.ok
                    else molecule.smiles not in reference
                ),
                "qed": float(qed.values[index]),
                "smiles": molecule.smiles or "",
                "reason": molecule.reason,
            }
        )
    return rows


def xtb_summary(rebuilt: Sequence[RebuiltMolecule], limit: int) -> dict[str, Any]:
    """GFN2-xTB on the first ``limit`` valid molecules: mean properties and timings."""
    results = [xtb_properties(molecule) for molecule in rebuilt if molecule.ok][:limit]
    finished = [result for result in results if result.ok]
    total = [result.hydrogen_seconds + result.xtb_seconds for result in results]
    return {
        "n_molecules": len(results),
        "n_ok": len(finished),
        "dipole_debye_mean": float(np.mean([r.dipole_debye for r in finished]))
        if finished
        else None,
        "gap_ev_mean": float(np.mean([r.gap_ev for r in finished])) if finished else None,
        "ms_per_molecule_median": 1e3 * float(np.median(total)) if total else None,
        "xtb_ms_median": 1e3 * float(np.median([r.xtb_seconds for r in results]))
        if results
        else None,
    }


def report_dict(report: QualityReport, rebuilt: Sequence[RebuiltMolecule]) -> dict[str, Any]:
    """``report`` as JSON, with the mean QED of the valid molecules and the penalized share."""
    qed = qed_scores(rebuilt)
    valid_qed = qed.values[~qed.penalized]
    return {
        **report.as_dict(),
        "qed_mean_valid": float(valid_qed.mean()) if len(valid_qed) else None,
        "qed_penalized_fraction": qed.penalized_fraction,
    }


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured.

    Attributes:
        result: the JSON document: note, EDM's published figures, provenance, and where
            measured, ``checkpoint``, ``sampler`` and ``samples`` (the unguided samples) and
            ``reference`` (the real molecules).
        rebuilt: the rebuilt samples (empty when none were drawn).
        reference_smiles: the training split's canonical SMILES (novelty's reference).
    """

    result: dict[str, Any]
    rebuilt: list[RebuiltMolecule]
    reference_smiles: frozenset[str]


def evaluate(
    dataset: MoleculeDataset,
    checkpoint: str | os.PathLike[str],
    n_samples: int,
    seed: int = 0,
    n_steps: int | None = None,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    reference_split: str | None = "test",
    xtb_samples: int = 0,
    provenance: dict[str, Any] | None = None,
) -> Evaluation:
    """Sample ``n_samples`` unguided molecules from ``checkpoint`` and measure them.

    Args:
        dataset: the cached QM9 (its ``generative`` split is novelty's reference).
        checkpoint: the EDM folder (verified against its manifest).
        n_samples: unguided samples (0: none, only the reference is measured).
        seed: the seed of the sampling noise (:func:`sample_unguided`).
        n_steps: the respaced sampler's steps S (None: all T).
        batch_size: molecules per forward pass.
        device: where the model samples.
        reference_split: the QM9 split whose real geometries give the metrics' ceiling
            (None: skip).
        xtb_samples: run GFN2-xTB on this many valid samples (:func:`xtb_summary`).
        provenance: the run's provenance record (:func:`casbo_bench.provenance.collect`).
    """
    # A split the data file lacks, or a damaged checkpoint, is refused here, before minutes
    # of work.
    real = dataset.subset(reference_split) if reference_split is not None else None
    loaded = load_sampler(checkpoint, device) if n_samples else None
    start = time.perf_counter()
    reference = training_smiles(dataset, "generative")
    logger.info("%s training SMILES in %.0f s", f"{len(reference):,}", time.perf_counter() - start)
    result: dict[str, Any] = {
        "note": HEAVY_ATOM_NOTE,
        "edm_published_with_hydrogens": EDM_PUBLISHED_WITH_HYDROGENS,
        "provenance": provenance or {},
    }
    rebuilt: list[RebuiltMolecule] = []
    if loaded is not None:
        model, verified = loaded
        start = time.perf_counter()
        samples = sample_unguided(model, n_samples, seed, n_steps, batch_size)
        sampling_seconds = time.perf_counter() - start
        logger.info("sampled %d molecules in %.1f s on %s", n_samples, sampling_seconds, device)
        rebuilt = rebuild_samples(samples)
        report = quality_report(rebuilt, reference)
        result["checkpoint"] = {
            "directory": str(checkpoint),
            "sampling_sha256": verified.sha256(SAMPLING_FILE),
            "step": model.step,
            "molecules_seen": model.molecules_seen,
            "training_wall_seconds": verified.manifest.get("training", {}).get("wall_seconds"),
        }
        result["sampler"] = {
            "steps": n_steps if n_steps is not None else model.diffusion.timesteps,
            "timesteps": model.diffusion.timesteps,
            "n_samples": n_samples,
            "seed": seed,
            "device": str(device),
            "seconds": round(sampling_seconds, 2),
        }
        result["samples"] = report_dict(report, rebuilt)
        if xtb_samples:
            result["samples"]["xtb"] = xtb_summary(rebuilt, xtb_samples)
        logger.info("samples: %s", json.dumps(result["samples"]))
    if real is not None:
        real_rebuilt = rebuild_dataset(real)
        result["reference"] = {
            "split": reference_split,
            "smiles_agreement": smiles_agreement(real, real_rebuilt),
            **report_dict(quality_report(real_rebuilt, reference), real_rebuilt),
        }
        logger.info("real QM9 (%s): %s", reference_split, json.dumps(result["reference"]))
    return Evaluation(result=result, rebuilt=rebuilt, reference_smiles=reference)


def quality_entry(result: dict[str, Any]) -> dict[str, Any]:
    """The ``quality`` entry of the checkpoint's manifest from :func:`evaluate`'s result:
    checkpoint, sampler, samples, reference and note, with the date and device measured."""
    quality: dict[str, Any] = {
        key: result[key]
        for key in ("checkpoint", "sampler", "samples", "reference", "note")
        if key in result
    }
    quality["measured"] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "device": result["provenance"].get("device"),
    }
    return quality


def write_sample_rows(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> Path:
    """``rows`` (:func:`sample_rows`) as a CSV file, written atomically."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomically(path, text.getvalue())
