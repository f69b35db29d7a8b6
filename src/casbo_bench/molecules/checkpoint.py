"""Model folders: where the stored models live, and the one place that reads them.

A model folder holds weights and a ``manifest.json`` listing the sha256 and size of every
file. Two are stored, in ``models/`` of the checkout (found relative to the current folder
unless a ``models_dir`` is given):

- ``edm_qm9_heavy``: ``sampling.pt`` (float16 EMA weights, model options, atom-count
  histogram), ``training_state.pt`` and ``curve.csv``, written by
  :mod:`casbo_bench.molecules.training.edm`;
- ``property_predictor``: ``predictor.pt`` (float32 weights, model options, target
  normalization) and ``curve.csv``, written by :mod:`casbo_bench.molecules.training.predictor`.

Every read goes through :func:`read_checkpoint`, which reads the manifest and the files
consistently (a training run may be replacing them) and checks every sha256 before a byte is
unpickled (``torch.load(weights_only=True)``), so a tampered, truncated or half-written file is
refused with a one-line :class:`CheckpointError` that names it and the way out. On top of it,
:func:`load_sampler` gives the diffusion model ready to sample, :func:`load_predictor` the
property predictor and :func:`read_training_state` the EDM training's state for a resume;
none imports any training code.

The manifest is sealed: its entry ``manifest_sha256`` is the sha256 of the rest of it as
compact JSON with sorted keys (:func:`manifest_text`), so a changed byte anywhere in it (a
hash, the predictor's normalization, a percentile a task's target is read from) is refused
too, and re-indenting it is not a change. Every writer of a manifest goes through
:func:`write_manifest`; a folder written before manifests were sealed is sealed once, after
its files are checked against it, by ``python scripts/seal_manifest.py FOLDER``
(:func:`seal_manifest`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from casbo_bench.errors import UserFacingError
from casbo_bench.files import write_text_atomically
from casbo_bench.molecules.diffusion import EquivariantDiffusion, build_diffusion
from casbo_bench.molecules.property_model import PropertyPredictor

DEFAULT_MODELS_DIR = Path("models")
"""The folder of the stored model folders, relative to the current folder (the checkout's
root, where the workflow and the README's commands run; anywhere else, pass the folder)."""

EDM_FOLDER = "edm_qm9_heavy"
PREDICTOR_FOLDER = "property_predictor"

MANIFEST_FILE = "manifest.json"
SAMPLING_FILE = "sampling.pt"
STATE_FILE = "training_state.pt"
PREDICTOR_FILE = "predictor.pt"
CURVE_FILE = "curve.csv"

SEAL = "manifest_sha256"
"""The manifest's own entry: the sha256 of the rest of it (:func:`manifest_text`)."""

SEAL_COMMAND = "python scripts/seal_manifest.py {folder}"
"""The one-off command that seals a manifest written before manifests were sealed."""

TRAINING_COMMANDS: dict[str, str] = {
    SAMPLING_FILE: "casbo-bench train-edm --data results/data/qm9_heavy.npz --out {folder}",
    PREDICTOR_FILE: "casbo-bench train-predictor --data results/data/qm9_heavy.npz --out {folder}",
}
"""The command that writes a folder holding each kind of weights (for the errors' fixes)."""


class CheckpointError(UserFacingError, RuntimeError):
    """A model folder is missing, or its files do not match its manifest."""


def edm_folder(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The EDM checkpoint folder in ``models_dir`` (default :data:`DEFAULT_MODELS_DIR`)."""
    return Path(DEFAULT_MODELS_DIR if models_dir is None else models_dir) / EDM_FOLDER


def predictor_folder(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The property predictor folder in ``models_dir`` (default :data:`DEFAULT_MODELS_DIR`)."""
    return Path(DEFAULT_MODELS_DIR if models_dir is None else models_dir) / PREDICTOR_FOLDER


def _sha256(data: bytes) -> str:
    """Hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _unsealed_digest(manifest: Mapping[str, Any]) -> str:
    """sha256 of ``manifest`` without its seal, as compact JSON with sorted keys."""
    rest = {key: value for key, value in manifest.items() if key != SEAL}
    return _sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())


def manifest_text(manifest: Mapping[str, Any]) -> str:
    """The text of a ``manifest.json`` holding ``manifest`` (JSON values), sealed.

    The seal is computed on the values as a reader parses them back (a tuple is a list, a
    key a string), so reading the text and re-serializing it in any layout keeps it valid.
    """
    parsed = json.loads(json.dumps(dict(manifest)))
    parsed.pop(SEAL, None)
    parsed[SEAL] = _unsealed_digest(parsed)
    return json.dumps(parsed, indent=2) + "\n"


def write_manifest(directory: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write ``directory/manifest.json`` sealed (:func:`manifest_text`), atomically."""
    return write_text_atomically(Path(directory) / MANIFEST_FILE, manifest_text(manifest))


def _how_to_train(directory: Path, names: Iterable[str]) -> str:
    """The training command of ``directory``: by the weights named, else those it holds."""
    held = [name for name in TRAINING_COMMANDS if (directory / name).is_file()]
    commands = [TRAINING_COMMANDS[name] for name in (*names, *held) if name in TRAINING_COMMANDS]
    command = commands[0] if commands else TRAINING_COMMANDS[SAMPLING_FILE]
    return command.format(folder=directory)


def _restore_or_retrain(path: Path, directory: Path, names: Iterable[str]) -> str:
    """The way out of a damaged file ``path`` of a model folder: the fix of an error."""
    if path.name == STATE_FILE:
        return f"delete {path} to start the training over, or restore it from a copy"
    return (
        f"restore {path} from a copy (`git checkout -- {path}` for the stored models) or "
        f"retrain with `{_how_to_train(directory, names)}`"
    )


def _parse_manifest(directory: str | os.PathLike[str], data: bytes) -> dict[str, Any]:
    """The manifest of ``directory`` from its bytes ``data``, after checking its seal.

    Raises:
        CheckpointError: ``data`` is not a JSON object with a ``files`` table, has no seal,
            or does not match its seal.
    """
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    fix = _restore_or_retrain(path, directory, ())
    try:
        manifest = json.loads(data)
    except ValueError as error:  # UnicodeDecodeError or JSONDecodeError
        raise CheckpointError(f"{path} is not valid JSON ({error}); {fix}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"{path} is not a model manifest (no 'files' table); {fix}")
    fix = _restore_or_retrain(path, directory, manifest["files"])
    if SEAL not in manifest:
        raise CheckpointError(
            f"{path} has no {SEAL} (it was written before manifests were sealed); check its "
            f"files and seal it with `{SEAL_COMMAND.format(folder=directory)}`, or {fix}"
        )
    actual = _unsealed_digest(manifest)
    if manifest[SEAL] != actual:
        raise CheckpointError(
            f"{path} has content sha256 {actual}, its {SEAL} says {manifest[SEAL]}: the "
            f"manifest is corrupt or was edited by hand; {fix}"
        )
    return manifest


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """Files of a model folder read together with the manifest that describes them.

    Attributes:
        directory: the model folder.
        manifest: the parsed ``manifest.json``, its seal checked.
        contents: file name -> bytes, each matching the manifest's sha256.
    """

    directory: Path
    manifest: dict[str, Any]
    contents: dict[str, bytes]

    def sha256(self, name: str) -> str:
        """The manifest's (and the file's) sha256 of ``name``."""
        return str(self.manifest["files"][name]["sha256"])


def _listed_sha256(manifest: Mapping[str, Any], name: str) -> str | None:
    entry = manifest["files"].get(name)
    return entry.get("sha256") if isinstance(entry, dict) else None


def read_checkpoint(
    directory: str | os.PathLike[str],
    names: Iterable[str] = (SAMPLING_FILE,),
    attempts: int = 5,
    wait_seconds: float = 2.0,
) -> VerifiedCheckpoint:
    """Read files of a model folder consistently with their manifest and verify their sha256.

    A training run may replace the files at any time (each by an atomic rename; the manifest
    last). One attempt reads the manifest, then the files, then the manifest again; it is
    accepted when both manifest reads agree, the manifest matches its seal and every file's
    sha256 matches the manifest. A file that does not match may be a rewrite in progress, so
    the read is repeated after ``wait_seconds``; a manifest that does not parse or match its
    seal is refused at once (it is only ever replaced whole).

    Args:
        directory: the model folder (with ``manifest.json``).
        names: the files to read; each must be listed in the manifest.
        attempts: reads before giving up.
        wait_seconds: pause between attempts.

    Raises:
        CheckpointError: a file or the manifest is missing, the manifest is damaged, or a
            file's sha256 still disagrees after ``attempts`` reads (a corrupt, truncated or
            hand-edited file); the message names the file and the way out.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    names = tuple(names)
    if not directory.is_dir():
        raise CheckpointError(
            f"there is no model folder {directory} (from {Path.cwd()}); run from the checkout's "
            f"root, where models/ holds the stored models, name the folder with --models-dir "
            f"(config: molecules.models_dir), or train one with "
            f"`{_how_to_train(directory, names)}`"
        )
    mismatch = ""
    wrong: list[str] = []
    for attempt in range(attempts):
        if attempt:
            time.sleep(wait_seconds)
        try:
            before = manifest_path.read_bytes()
            contents = {name: (directory / name).read_bytes() for name in names}
            after = manifest_path.read_bytes()
        except FileNotFoundError as error:
            raise CheckpointError(
                f"{error.filename} is missing; train the model with "
                f"`{_how_to_train(directory, names)}`"
            ) from error
        if before != after:
            mismatch = "the manifest changed while the files were read"
            continue
        manifest = _parse_manifest(directory, before)
        unlisted = [name for name in names if _listed_sha256(manifest, name) is None]
        if unlisted:
            raise CheckpointError(
                f"{manifest_path} lists no sha256 for {unlisted}; "
                f"{_restore_or_retrain(directory / unlisted[0], directory, names)}"
            )
        digests = {name: _sha256(data) for name, data in contents.items()}
        wrong = [name for name in names if digests[name] != _listed_sha256(manifest, name)]
        if not wrong:
            return VerifiedCheckpoint(directory=directory, manifest=manifest, contents=contents)
        mismatch = "; ".join(
            f"{directory / name} has sha256 {digests[name]} ({len(contents[name])} bytes), "
            f"the manifest says {_listed_sha256(manifest, name)} "
            f"({manifest['files'][name].get('bytes')} bytes)"
            for name in wrong
        )
    fixes = [_restore_or_retrain(directory / name, directory, names) for name in wrong]
    raise CheckpointError(
        f"{mismatch} (read {attempts} times): the checkpoint is corrupt or still being "
        f"rewritten; wait for a training slice to checkpoint, or {'; or '.join(fixes) or 'retrain'}"
    )


def seal_manifest(directory: str | os.PathLike[str]) -> bool:
    """Seal the manifest of a folder written before manifests were sealed (a one-off).

    Only a manifest whose every listed file is present and matches its sha256 and size is
    sealed; the files themselves are not touched.

    Returns:
        True when the manifest was sealed, False when it already carried a valid seal.

    Raises:
        CheckpointError: the manifest is missing, does not parse, carries a seal that does
            not match, or a listed file is missing or does not match it.
    """
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise CheckpointError(f"there is no {path}; name a model folder")
    data = path.read_bytes()
    try:
        manifest = json.loads(data)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or SEAL in manifest:
        _parse_manifest(directory, data)  # raises for a damaged manifest or seal
        return False
    if not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"{path} is not a model manifest (no 'files' table)")
    for name, entry in manifest["files"].items():
        file = directory / name
        content = file.read_bytes() if file.is_file() else b""
        listed = (entry.get("sha256"), entry.get("bytes")) if isinstance(entry, dict) else None
        if not file.is_file() or listed != (_sha256(content), len(content)):
            raise CheckpointError(
                f"{file} is missing or does not match {path}; only a manifest whose files "
                f"all match it is sealed: restore the file, or retrain"
            )
    write_manifest(directory, manifest)
    return True


def record_quality(
    directory: str | os.PathLike[str], quality: dict[str, Any], sampling_sha256: str
) -> None:
    """Write ``quality`` into the EDM folder's manifest.

    A measurement of the full sampler (``quality["sampler"]["steps"]`` equal to its
    ``"timesteps"``) is the ``"quality"`` entry, the model's headline quality; one of a
    respaced sampler of S steps is ``"quality_respaced"[str(S)]``, beside it (the optimizers
    sample with S = 20, so that is the quality of the molecules they start from).

    The entry describes one set of weights, so it is written only while the manifest still
    lists ``sampling_sha256`` for ``sampling.pt`` (the weights that were measured). A training
    slice writes a fresh manifest, which drops the entries together with the old weights.

    Raises:
        CheckpointError: the manifest is damaged, or the checkpoint changed since it was
            measured.
    """
    path = Path(directory) / MANIFEST_FILE
    manifest = _parse_manifest(directory, path.read_bytes())
    listed = _listed_sha256(manifest, SAMPLING_FILE)
    if listed != sampling_sha256:
        raise CheckpointError(
            f"{path} now lists sha256 {listed} for {SAMPLING_FILE}, not the measured "
            f"{sampling_sha256}: the checkpoint changed while it was measured; stop training "
            f"and measure again"
        )
    sampler = quality["sampler"]
    if sampler["steps"] == sampler["timesteps"]:
        manifest["quality"] = quality
    else:
        manifest.setdefault("quality_respaced", {})[str(sampler["steps"])] = quality
    write_manifest(directory, manifest)


# --- the diffusion model -------------------------------------------------------------------


@dataclass(frozen=True)
class PretrainedModel:
    """A diffusion model loaded from a sampling checkpoint.

    Attributes:
        diffusion: the model (float32 EMA weights, eval mode, on the requested device).
        atom_count_histogram: a ``10`` array of training-set molecule counts by atom number.
        model_options: the options it was built with.
        step: training steps behind the weights.
        molecules_seen: training molecules behind the weights.
    """

    diffusion: EquivariantDiffusion
    atom_count_histogram: NDArray[np.int64]
    model_options: dict[str, Any]
    step: int
    molecules_seen: int


def _torch_state(data: bytes) -> Any:
    """A ``torch.save``'d state of plain types and tensors, read on the CPU."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def sampler_from_bytes(data: bytes, device: torch.device | str = "cpu") -> PretrainedModel:
    """The model of a ``sampling.pt``'s bytes: float16 EMA weights as a float32 model."""
    state: Mapping[str, Any] = _torch_state(data)
    diffusion = build_diffusion(state["model_options"], seed=0)
    diffusion.load_state_dict(
        {name: tensor.to(torch.float32) for name, tensor in state["ema_fp16"].items()}
    )
    diffusion.to(torch.device(device)).eval().requires_grad_(False)
    return PretrainedModel(
        diffusion=diffusion,
        atom_count_histogram=np.asarray(state["atom_count_histogram"], dtype=np.int64),
        model_options=dict(state["model_options"]),
        step=int(state["step"]),
        molecules_seen=int(state["molecules_seen"]),
    )


def read_training_state(directory: str | os.PathLike[str], attempts: int = 5) -> dict[str, Any]:
    """The training state of an EDM folder (``training_state.pt``), verified against the
    manifest's sha256 like every other file read here, for a training run to resume.

    ``attempts`` reads are made while a training run may be rewriting the folder
    (:func:`read_checkpoint`).

    Raises:
        CheckpointError: the state or the manifest is missing or damaged, or the state does
            not match the manifest (the fix: delete the state to start over, or restore it).
    """
    checkpoint = read_checkpoint(directory, (STATE_FILE,), attempts=attempts)
    state: dict[str, Any] = _torch_state(checkpoint.contents[STATE_FILE])
    return state


def load_sampler(
    directory: str | os.PathLike[str], device: torch.device | str = "cpu", attempts: int = 5
) -> tuple[PretrainedModel, VerifiedCheckpoint]:
    """The sampling model of an EDM folder, from bytes verified against its manifest.

    ``attempts`` as in :func:`read_checkpoint`.

    Raises:
        CheckpointError: the folder is missing, its manifest is damaged, or ``sampling.pt``
            does not match the manifest.
    """
    checkpoint = read_checkpoint(directory, (SAMPLING_FILE,), attempts=attempts)
    return sampler_from_bytes(checkpoint.contents[SAMPLING_FILE], device), checkpoint


# --- the property predictor ----------------------------------------------------------------


@dataclass(frozen=True)
class LoadedPredictor:
    """A property predictor read from its folder, verified against its manifest.

    Attributes:
        model: the predictor (eval mode, no gradients).
        manifest: the parsed manifest (test MAE, target normalization, percentiles).
        sha256: the sha256 of ``predictor.pt``.
    """

    model: PropertyPredictor
    manifest: dict[str, Any]
    sha256: str


def load_predictor(
    directory: str | os.PathLike[str], device: torch.device | str = "cpu", attempts: int = 5
) -> LoadedPredictor:
    """The predictor of ``directory``, loaded after checking ``predictor.pt``'s sha256.

    ``attempts`` reads are made while a training run may be rewriting the folder
    (:func:`read_checkpoint`).

    Raises:
        CheckpointError: the files are missing or do not match the manifest.
    """
    checkpoint = read_checkpoint(directory, (PREDICTOR_FILE,), attempts=attempts)
    state = _torch_state(checkpoint.contents[PREDICTOR_FILE])
    model = PropertyPredictor.from_options(state["model_options"])
    model.load_state_dict(state["weights"])
    model.to(torch.device(device)).eval().requires_grad_(False)
    return LoadedPredictor(
        model=model, manifest=checkpoint.manifest, sha256=checkpoint.sha256(PREDICTOR_FILE)
    )
