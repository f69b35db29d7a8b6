"""Quality of the pre-trained EDM: unguided samples, their metrics, and real QM9's ceiling.

    python -m casbo_bench.molecules.evaluate --checkpoint models/edm_qm9_heavy \\
        --data results/data/qm9_heavy.npz --samples 1000 [--steps 100] [--seed 0] \\
        [--device auto|cpu|cuda] --out results/molecules/quality.json [--csv samples.csv]

Draws ``--samples`` unguided molecules (atom counts from the training histogram, every noise
standard Gaussian from one seeded generator) with the full sampler, or a respaced one of
``--steps`` steps; rebuilds each with :mod:`casbo_bench.molecules.rebuild`; and writes the
metrics of :mod:`casbo_bench.molecules.metrics` as JSON, beside the same metrics on QM9's
real geometries of ``--reference-split`` (the ceiling the metrics allow) and EDM's published
figures (which count explicit hydrogens: not comparable like for like). ``--csv`` adds one row
per sample (SMILES, validity, stability, QED).

The checkpoint is read while training may be rewriting it: :func:`read_checkpoint` reads the
manifest and the files consistently and checks every sha256 against the manifest.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from casbo_bench.errors import UserFacingError
from casbo_bench.molecules.data import SPLIT_NAMES, load_dataset
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
from casbo_bench.molecules.training import (
    MANIFEST_FILE,
    SAMPLING_FILE,
    PretrainedModel,
    load_sampling_checkpoint,
    resolve_device,
    write_atomically,
)

HEAVY_ATOM_NOTE = (
    "heavy-atom metrics (implicit hydrogens); EDM's published figures count explicit "
    "hydrogens and are not comparable like for like"
)


class CheckpointError(UserFacingError, RuntimeError):
    """A checkpoint's files do not match its manifest, or cannot be read."""


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """Checkpoint files read together with the manifest that describes them.

    Attributes:
        directory: the checkpoint folder.
        manifest: the parsed ``manifest.json``.
        contents: file name -> bytes, each matching the manifest's sha256.
    """

    directory: Path
    manifest: dict[str, Any]
    contents: dict[str, bytes]

    def sha256(self, name: str) -> str:
        """The manifest's (and the file's) sha256 of ``name``."""
        return str(self.manifest["files"][name]["sha256"])


def read_checkpoint(
    directory: str | os.PathLike[str],
    names: Iterable[str] = (SAMPLING_FILE,),
    attempts: int = 5,
    wait_seconds: float = 2.0,
) -> VerifiedCheckpoint:
    """Read checkpoint files consistently with their manifest and verify their sha256.

    A training run may replace the files at any time (each by an atomic rename; the manifest
    last). One attempt reads the manifest, then the files, then the manifest again; it is
    accepted when both manifest reads agree and every file's sha256 matches. Otherwise (a
    rewrite in progress) the read is repeated after ``wait_seconds``.

    Args:
        directory: the checkpoint folder (with ``manifest.json``).
        names: the files to read; None of them may be missing from the manifest.
        attempts: reads before giving up.
        wait_seconds: pause between attempts.

    Raises:
        CheckpointError: a file or the manifest is missing, or the hashes still disagree after
            ``attempts`` reads (a corrupt or hand-edited checkpoint).
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    names = tuple(names)
    mismatch = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(wait_seconds)
        try:
            before = manifest_path.read_bytes()
            contents = {name: (directory / name).read_bytes() for name in names}
            after = manifest_path.read_bytes()
        except FileNotFoundError as error:
            raise CheckpointError(
                f"{error.filename} is missing; train a checkpoint with "
                f"`python -m casbo_bench.molecules.train --out {directory}`"
            ) from error
        if before != after:
            mismatch = "the manifest changed while the files were read"
            continue
        manifest = json.loads(before)
        listed = manifest.get("files", {})
        unlisted = [name for name in names if name not in listed]
        if unlisted:
            raise CheckpointError(f"{manifest_path} lists no sha256 for {unlisted}")
        wrong = [
            (name, hashlib.sha256(data).hexdigest(), listed[name]["sha256"])
            for name, data in contents.items()
            if hashlib.sha256(data).hexdigest() != listed[name]["sha256"]
        ]
        if not wrong:
            return VerifiedCheckpoint(directory=directory, manifest=manifest, contents=contents)
        mismatch = "; ".join(
            f"{name} has sha256 {actual}, the manifest says {expected}"
            for name, actual, expected in wrong
        )
    raise CheckpointError(
        f"{directory}: {mismatch} (after {attempts} reads); the checkpoint is corrupt or "
        "still being rewritten: wait for the training slice to checkpoint, or retrain"
    )


def load_verified_model(
    directory: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> tuple[PretrainedModel, VerifiedCheckpoint]:
    """The sampling model of a checkpoint folder, loaded from bytes verified by its manifest."""
    checkpoint = read_checkpoint(directory, (SAMPLING_FILE,))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / SAMPLING_FILE
        path.write_bytes(checkpoint.contents[SAMPLING_FILE])
        model = load_sampling_checkpoint(path, device)
    return model, checkpoint


def record_quality(
    directory: str | os.PathLike[str], quality: dict[str, Any], sampling_sha256: str
) -> None:
    """Write ``quality`` into the checkpoint's manifest as its ``"quality"`` entry.

    The entry describes one set of weights, so it is written only while the manifest still
    lists ``sampling_sha256`` for ``sampling.pt`` (the weights that were measured). A training
    slice writes a fresh manifest, which drops the entry together with the old weights.

    Raises:
        CheckpointError: the checkpoint changed since it was measured.
    """
    path = Path(directory) / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    listed = manifest.get("files", {}).get(SAMPLING_FILE, {}).get("sha256")
    if listed != sampling_sha256:
        raise CheckpointError(
            f"{path} now lists sha256 {listed} for {SAMPLING_FILE}, not the measured "
            f"{sampling_sha256}: the checkpoint changed while it was measured; stop training "
            f"and measure again"
        )
    manifest["quality"] = quality
    text = (json.dumps(manifest, indent=2) + "\n").encode()
    write_atomically(path, lambda stream: stream.write(text))


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


def _sample_rows(
    rebuilt: Sequence[RebuiltMolecule], reference: frozenset[str] | None
) -> list[dict[str, Any]]:
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


def _xtb_summary(rebuilt: Sequence[RebuiltMolecule], limit: int) -> dict[str, Any]:
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


def _report_dict(report: QualityReport, rebuilt: Sequence[RebuiltMolecule]) -> dict[str, Any]:
    qed = qed_scores(rebuilt)
    valid_qed = qed.values[~qed.penalized]
    return {
        **report.as_dict(),
        "qed_mean_valid": float(valid_qed.mean()) if len(valid_qed) else None,
        "qed_penalized_fraction": qed.penalized_fraction,
    }


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m casbo_bench.molecules.evaluate",
        description=(
            "Sample unguided molecules from the heavy-atom EDM checkpoint and measure atom and "
            "molecule stability, RDKit validity, uniqueness and novelty, beside real QM9's."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=Path("models/edm_qm9_heavy"),
        help="checkpoint folder with sampling.pt and manifest.json",
    )
    parser.add_argument(
        "--data", type=Path, default=Path("results/data/qm9_heavy.npz"), help="cached QM9 npz"
    )
    parser.add_argument("--samples", type=int, default=1000, help="unguided samples (0: none)")
    parser.add_argument(
        "--steps", type=int, default=None, help="respaced sampler steps S (default: all T)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling noise")
    parser.add_argument("--batch-size", type=int, default=500, help="molecules per forward pass")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--reference-split",
        default="test",
        choices=(*SPLIT_NAMES, "none"),
        help="QM9 split whose real geometries give the metrics' ceiling ('none': skip)",
    )
    parser.add_argument(
        "--xtb-samples",
        type=int,
        default=0,
        help="run GFN2-xTB on this many valid samples and report time and mean properties",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file of metrics")
    parser.add_argument("--csv", type=Path, default=None, help="CSV file, one row per sample")
    parser.add_argument(
        "--record-in-manifest",
        action="store_true",
        help="also write the metrics into the checkpoint's manifest.json (entry 'quality'), "
        "refused if the checkpoint changed while it was measured",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, sample, measure, write the JSON (and CSV)."""
    from casbo_bench.provenance import collect

    args = _parser().parse_args(argv)
    if args.samples < 0 or args.xtb_samples < 0:
        raise SystemExit("--samples and --xtb-samples must be non-negative")
    if args.steps is not None and args.steps < 1:
        raise SystemExit("--steps must be at least 1 (or left out for the full sampler)")
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dataset = load_dataset(args.data)
    start = time.perf_counter()
    reference = training_smiles(dataset, "generative")
    _log(f"{len(reference):,} training SMILES in {time.perf_counter() - start:.0f} s")
    result: dict[str, Any] = {
        "note": HEAVY_ATOM_NOTE,
        "edm_published_with_hydrogens": EDM_PUBLISHED_WITH_HYDROGENS,
        "provenance": collect(None, {**vars(args), "device": str(device)}),
    }
    rebuilt: list[RebuiltMolecule] = []
    if args.samples:
        model, checkpoint = load_verified_model(args.checkpoint, device)
        start = time.perf_counter()
        samples = sample_unguided(model, args.samples, args.seed, args.steps, args.batch_size)
        sampling_seconds = time.perf_counter() - start
        _log(f"sampled {args.samples} molecules in {sampling_seconds:.1f} s on {device}")
        rebuilt = rebuild_samples(samples)
        report = quality_report(rebuilt, reference)
        result["checkpoint"] = {
            "directory": str(args.checkpoint),
            "sampling_sha256": checkpoint.sha256(SAMPLING_FILE),
            "step": model.step,
            "molecules_seen": model.molecules_seen,
            "training_wall_seconds": checkpoint.manifest.get("training", {}).get("wall_seconds"),
        }
        result["sampler"] = {
            "steps": args.steps if args.steps is not None else model.diffusion.timesteps,
            "timesteps": model.diffusion.timesteps,
            "n_samples": args.samples,
            "seed": args.seed,
            "device": str(device),
            "seconds": round(sampling_seconds, 2),
        }
        result["samples"] = _report_dict(report, rebuilt)
        if args.xtb_samples:
            result["samples"]["xtb"] = _xtb_summary(rebuilt, args.xtb_samples)
        _log(f"samples: {json.dumps(result['samples'])}")
    if args.reference_split != "none":
        real = dataset.subset(args.reference_split)
        real_rebuilt = rebuild_dataset(real)
        result["reference"] = {
            "split": args.reference_split,
            "smiles_agreement": smiles_agreement(real, real_rebuilt),
            **_report_dict(quality_report(real_rebuilt, reference), real_rebuilt),
        }
        _log(f"real QM9 ({args.reference_split}): {json.dumps(result['reference'])}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.record_in_manifest and rebuilt:
        quality: dict[str, Any] = {
            key: result[key]
            for key in ("checkpoint", "sampler", "samples", "reference", "note")
            if key in result
        }
        quality["measured"] = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "device": result["provenance"].get("device"),
        }
        try:
            record_quality(args.checkpoint, quality, result["checkpoint"]["sampling_sha256"])
        except CheckpointError as error:
            raise SystemExit(f"evaluate: {error} (the metrics are in {args.out})") from None
        _log(f"recorded the metrics in {args.checkpoint / MANIFEST_FILE}")
    if args.csv is not None and rebuilt:
        rows = _sample_rows(rebuilt, reference)
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    _log(f"wrote {args.out}" + (f" and {args.csv}" if args.csv is not None and rebuilt else ""))


if __name__ == "__main__":
    main()
