"""GFN2-xTB mapped to QM9's DFT units: a finite-field polarizability and a linear calibration.

Read first :func:`xtb_observables` (what is computed per molecule), then :func:`calibrate`
(the fit). The error ladder (:mod:`casbo_bench.molecules.ladder`) scores every molecule by
the property predictor and by GFN2-xTB; xTB's numbers are not DFT's (a minimal basis, a
different functional), so each xTB quantity ``x`` is mapped to the DFT property ``y`` by

    y_hat = slope * x + intercept

fitted by least squares on QM9 molecules (DFT labels known) run through the same pipeline
as a generated molecule: the heavy atoms rebuilt (:func:`~casbo_bench.molecules.rebuild.
rebuild_molecule`), hydrogens added and relaxed with heavy atoms fixed
(:func:`~casbo_bench.molecules.scores.add_hydrogens`), one GFN2-xTB single point
(:func:`~casbo_bench.molecules.scores.xtb_properties`). The pairs are

| property (DFT, QM9) | xTB quantity |
|---|---|
| ``alpha`` (bohr^3) | isotropic finite-field polarizability (bohr^3) |
| ``gap`` (eV) | HOMO-LUMO gap (eV) |
| ``mu`` (Debye) | dipole moment ``|mu|`` (Debye) |

**Finite-field polarizability.** tblite's ``electric-field`` interaction adds a uniform field
``F`` (atomic units) to the Hamiltonian; the isotropic polarizability is the mean diagonal of
the dipole's derivative, by central differences:

    alpha = (1/3) sum_k (mu_k(+F e_k) - mu_k(-F e_k)) / (2 F)     (atomic units: bohr^3)

Six single points, each started from the zero-field wavefunction. The error of the central
difference is O(F^2) (the second hyperpolarizability); between F = 5e-4 and 2e-3 a.u. alpha
moved by 0.14% for water (tested) and by about 0.01% for 9-heavy-atom QM9 molecules.

**Where it is stored.** ``casbo-bench calibrate-xtb`` writes a folder (default
``models/xtb_calibration``) of ``calibration.json`` (the fits: slope, intercept, n, MAE,
RMSE and R^2 of each, the seed, split and sha256 of the data, the pipeline's settings, the
time per molecule), ``molecules.csv`` (each molecule's DFT labels and xTB values) and a
sealed ``manifest.json`` like the model folders' (:func:`casbo_bench.molecules.checkpoint.
write_manifest`), read back by :func:`load_calibration`.

>>> fit = fit_line(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0]))
>>> round(fit.slope, 6), round(fit.intercept, 6), fit.n
(2.0, 1.0, 3)
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from casbo_bench.errors import UserFacingError
from casbo_bench.files import sha256_file, write_text_atomically
from casbo_bench.molecules.checkpoint import (
    MANIFEST_FILE,
    CheckpointError,
    read_checkpoint,
    write_manifest,
)
from casbo_bench.molecules.data import MoleculeDataset
from casbo_bench.molecules.rebuild import RebuiltMolecule, rebuild_molecule
from casbo_bench.molecules.scores import BOHR_IN_ANGSTROM, add_hydrogens, xtb_properties

FIELD_STEP = 1e-3
"""The finite field, atomic units (1 a.u. = 5.14e11 V/m): small enough that the dipole is
linear in it, large enough that SCF noise does not matter."""

CALIBRATION_FOLDER = Path("models") / "xtb_calibration"
"""The default calibration folder, relative to the checkout's root."""

CALIBRATION_FILE = "calibration.json"
MOLECULES_FILE = "molecules.csv"
PARTIAL_FILE = "molecules.partial.csv"
"""Progress of an unfinished calibration (resumed by the next run with the same settings)."""

CALIBRATION_COMMAND = (
    "casbo-bench calibrate-xtb --data results/data/qm9_heavy.npz --out {folder} --n 2000"
)

XTB_QUANTITIES: dict[str, str] = {"alpha": "alpha_bohr3", "gap": "gap_ev", "mu": "dipole_debye"}
"""QM9 property -> the xTB quantity mapped to it (a field of :class:`XtbObservables`)."""

XTB_UNITS: dict[str, str] = {"alpha": "bohr^3", "gap": "eV", "mu": "Debye"}


class CalibrationError(UserFacingError, RuntimeError):
    """A calibration cannot be computed, or a stored one is missing or damaged."""


# --- per molecule ----------------------------------------------------------------------------


def _field_pointer(field: Any) -> Any:
    """The field vector as the C array tblite's ``electric-field`` interaction takes.

    tblite's Python wrapper passes its argument straight to C (``double *``), so a NumPy
    array is refused; a cffi array works and lives as long as the returned object.
    """
    from tblite import library

    return library.ffi.new("double[3]", [float(value) for value in field])


def _dipole(
    numbers: NDArray[np.int64],
    positions_bohr: NDArray[np.float64],
    field: Any,
    accuracy: float,
    guess: Any = None,
) -> tuple[NDArray[np.float64], Any]:
    """GFN2-xTB dipole (atomic units, a ``3`` vector) in a uniform ``field`` (a ``3`` vector,
    atomic units), and the result."""
    from tblite.interface import Calculator

    calculator = Calculator(
        "GFN2-xTB", numbers, positions_bohr, charge=0.0, uhf=int(numbers.sum()) % 2
    )
    calculator.set("verbosity", 0)
    calculator.set("accuracy", accuracy)
    if any(field):
        calculator.add("electric-field", _field_pointer(field))
    result = calculator.singlepoint(guess, copy=True)
    return np.asarray(result.get("dipole"), dtype=np.float64), result


def finite_field_polarizability(
    numbers: Any, positions_bohr: Any, step: float = FIELD_STEP, accuracy: float = 1.0
) -> float:
    """Isotropic GFN2-xTB polarizability (bohr^3) by central differences (module docstring).

    Args:
        numbers: a ``n`` integer array of atomic numbers (hydrogens included).
        positions_bohr: a ``n x 3`` array of positions in bohr.
        step: the field ``F`` (atomic units), > 0.
        accuracy: tblite's numerical accuracy.

    Raises:
        ValueError: ``step`` is not positive.
        tblite's errors: the SCF failed (the caller catches them).
    """
    if not step > 0:
        raise ValueError(f"the field step must be positive; got {step}")
    numbers = np.asarray(numbers, dtype=np.int64)
    positions_bohr = np.asarray(positions_bohr, dtype=np.float64)
    _, guess = _dipole(numbers, positions_bohr, (0.0, 0.0, 0.0), accuracy)
    diagonal = []
    for axis in range(3):
        field = np.zeros(3)
        field[axis] = step
        plus, _ = _dipole(numbers, positions_bohr, field, accuracy, guess)
        minus, _ = _dipole(numbers, positions_bohr, -field, accuracy, guess)
        diagonal.append((plus[axis] - minus[axis]) / (2.0 * step))
    return float(np.mean(diagonal))


@dataclass(frozen=True)
class XtbObservables:
    """The xTB quantities of one molecule that map to QM9's properties.

    Attributes:
        ok: the single point ran (``gap_ev`` and ``dipole_debye`` are set).
        reason: empty when ``ok``; else what failed.
        gap_ev: HOMO-LUMO gap (eV).
        dipole_debye: ``|mu|`` (Debye).
        alpha_bohr3: finite-field isotropic polarizability (bohr^3); NaN when not asked for
            or when the field calculations failed (``ok`` stays true).
        seconds: wall time of the whole molecule.
    """

    ok: bool
    reason: str
    gap_ev: float = float("nan")
    dipole_debye: float = float("nan")
    alpha_bohr3: float = float("nan")
    seconds: float = 0.0

    def value(self, prop: str) -> float:
        """The xTB quantity mapped to QM9 property ``prop`` (:data:`XTB_QUANTITIES`)."""
        return float(getattr(self, XTB_QUANTITIES[prop]))


def xtb_observables(
    rebuilt: RebuiltMolecule,
    with_alpha: bool = True,
    field_step: float = FIELD_STEP,
    relax_iterations: int = 200,
) -> XtbObservables:
    """Gap, dipole and (optionally) finite-field alpha of a rebuilt molecule; never raises.

    The gap and dipole are :func:`~casbo_bench.molecules.scores.xtb_properties`' (the xTB
    tasks' own pipeline); alpha adds six field single points on the same hydrogen-added
    structure (the force-field relaxation is deterministic, so adding the hydrogens again
    gives the same geometry).
    """
    start = time.perf_counter()
    result = xtb_properties(rebuilt, relax_iterations=relax_iterations)
    if not result.ok:
        return XtbObservables(ok=False, reason=result.reason, seconds=time.perf_counter() - start)
    alpha = float("nan")
    if with_alpha and rebuilt.mol is not None:
        try:
            molecule = add_hydrogens(rebuilt.mol, relax_iterations)
            numbers = np.array([atom.GetAtomicNum() for atom in molecule.GetAtoms()])
            positions = molecule.GetConformer().GetPositions() / BOHR_IN_ANGSTROM
            alpha = finite_field_polarizability(numbers, positions, field_step)
        except Exception:  # tblite's SCF and RDKit's force field raise assorted types.
            alpha = float("nan")
    return XtbObservables(
        ok=True,
        reason="",
        gap_ev=result.gap_ev,
        dipole_debye=result.dipole_debye,
        alpha_bohr3=alpha if np.isfinite(alpha) else float("nan"),
        seconds=time.perf_counter() - start,
    )


# --- the fit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearFit:
    """``y_hat = slope * x + intercept`` by least squares, with its error on the fitted data.

    Attributes:
        slope, intercept: the line.
        n: molecules fitted.
        mae: mean ``|y - y_hat|`` over them (the unit of ``y``).
        rmse: root mean squared error.
        r2: the coefficient of determination ``1 - SS_res / SS_tot``.
    """

    slope: float
    intercept: float
    n: int
    mae: float
    rmse: float
    r2: float

    def apply(self, x: Any) -> NDArray[np.float64]:
        """The DFT-unit values of xTB values ``x`` (NaN stays NaN)."""
        return self.slope * np.asarray(x, dtype=np.float64) + self.intercept

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LinearFit:
        """The fit stored as ``record`` (a ``calibration.json`` entry)."""
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})


def fit_line(x: Any, y: Any) -> LinearFit:
    """The least-squares line through the finite pairs of ``x`` and ``y`` (``N`` arrays).

    Raises:
        CalibrationError: fewer than 3 finite pairs, or ``x`` constant on them.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) < 3 or np.ptp(x) == 0:
        raise CalibrationError(
            f"a linear fit needs at least 3 finite pairs with x not constant; got {len(x)}"
        )
    x_centred = x - x.mean()
    slope = float(np.dot(x_centred, y - y.mean()) / np.dot(x_centred, x_centred))
    intercept = float(y.mean() - slope * x.mean())
    residual = y - (slope * x + intercept)
    total = float(np.sum((y - y.mean()) ** 2))
    return LinearFit(
        slope=slope,
        intercept=intercept,
        n=len(x),
        mae=float(np.mean(np.abs(residual))),
        rmse=float(np.sqrt(np.mean(residual**2))),
        r2=1.0 - float(np.sum(residual**2)) / total if total > 0 else float("nan"),
    )


# --- the calibration run ---------------------------------------------------------------------

_CSV_COLUMNS: tuple[str, ...] = (
    "row",
    "qm9_index",
    "smiles",
    "n_heavy_atoms",
    "dft_alpha",
    "dft_gap",
    "dft_mu",
    "ok",
    "reason",
    "xtb_alpha",
    "xtb_gap",
    "xtb_mu",
    "seconds",
)


def calibration_rows(dataset: MoleculeDataset, split: str, n: int, seed: int) -> NDArray[np.int64]:
    """``n`` rows of ``split`` drawn without replacement by ``default_rng(seed)``, in draw
    order (so any first ``m`` of them are a uniform draw too).

    Raises:
        CalibrationError: the split holds fewer than ``n`` molecules.
    """
    pool = dataset.split_indices(split)
    if not 0 < n <= len(pool):
        raise CalibrationError(f"the {split} split holds {len(pool)} molecules; asked for {n}")
    return np.random.default_rng(seed).choice(pool, size=n, replace=False).astype(np.int64)


def _molecule_row(dataset: MoleculeDataset, row: int, observed: XtbObservables) -> dict[str, Any]:
    return {
        "row": int(row),
        "qm9_index": int(dataset.qm9_index[row]),
        "smiles": str(dataset.smiles[row]),
        "n_heavy_atoms": int(dataset.num_atoms[row]),
        **{f"dft_{name}": float(dataset.property(name)[row]) for name in XTB_QUANTITIES},
        "ok": observed.ok,
        "reason": observed.reason,
        **{f"xtb_{name}": observed.value(name) for name in XTB_QUANTITIES},
        "seconds": round(observed.seconds, 4),
    }


def _csv_text(records: Sequence[Mapping[str, Any]]) -> str:
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return stream.getvalue()


def _read_partial(path: Path, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of an unfinished run with the same ``settings``, else none."""
    header = path.with_suffix(".json")
    if not (path.is_file() and header.is_file()):
        return []
    if json.loads(header.read_text(encoding="utf-8")) != json.loads(json.dumps(settings)):
        return []
    with path.open(encoding="utf-8", newline="") as stream:
        records: list[dict[str, Any]] = list(csv.DictReader(stream))
    for record in records:
        record["row"] = int(record["row"])
        record["ok"] = record["ok"] == "True"
        for name in XTB_QUANTITIES:
            record[f"xtb_{name}"] = float(record[f"xtb_{name}"] or "nan")
            record[f"dft_{name}"] = float(record[f"dft_{name}"])
        record["seconds"] = float(record["seconds"])
    return records


def calibrate(
    dataset: MoleculeDataset,
    out: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    n: int = 2000,
    seed: int = 0,
    split: str = "test",
    n_alpha: int | None = None,
    field_step: float = FIELD_STEP,
    relax_iterations: int = 200,
    checkpoint_every: int = 25,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run :func:`xtb_observables` on ``n`` seeded molecules of ``split``, fit each line, and
    write the calibration folder ``out`` (module docstring). Progress is saved every
    ``checkpoint_every`` molecules; a stopped run with the same settings resumes.

    The finite-field alpha costs six more single points per molecule, so it is computed
    for the first ``n_alpha`` molecules of the draw only (all ``n`` when None; 0 skips it).

    Returns:
        The ``calibration.json`` record.

    Raises:
        CalibrationError: too few molecules, or a fit has fewer than 3 successful molecules.
    """
    from tblite import library

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_sha256 = sha256_file(data_path)
    n_alpha = n if n_alpha is None else min(n_alpha, n)
    settings = {
        "data_sha256": data_sha256,
        "split": split,
        "n": n,
        "seed": seed,
        "n_alpha": n_alpha,
        "field_step": field_step,
        "relax_iterations": relax_iterations,
    }
    rows = calibration_rows(dataset, split, n, seed)
    partial = out / PARTIAL_FILE
    records = _read_partial(partial, settings)
    write_text_atomically(partial.with_suffix(".json"), json.dumps(settings, indent=2) + "\n")
    start = time.perf_counter()
    for count, row in enumerate(rows[len(records) :], start=len(records) + 1):
        rebuilt = rebuild_molecule(dataset.positions[row], dataset.atom_types[row])
        with_alpha = count <= n_alpha
        observed = xtb_observables(rebuilt, with_alpha, field_step, relax_iterations)
        records.append(_molecule_row(dataset, int(row), observed))
        if count % checkpoint_every == 0 or count == n:
            write_text_atomically(partial, _csv_text(records))
        if progress is not None:
            progress(count, n)
    wall = time.perf_counter() - start
    fits = {}
    for name in XTB_QUANTITIES:
        if name == "alpha" and n_alpha == 0:
            continue
        x = np.array([record[f"xtb_{name}"] for record in records])
        y = np.array([record[f"dft_{name}"] for record in records])
        fits[name] = {
            **asdict(fit_line(x, y)),
            "xtb_quantity": XTB_QUANTITIES[name],
            "unit": XTB_UNITS[name],
        }
    seconds = [record["seconds"] for record in records]
    tblite_version = ".".join(map(str, library.get_version()))
    record = {
        "description": (
            "GFN2-xTB mapped to QM9's DFT properties by a least-squares line per property, "
            "on QM9 molecules run through the generated molecules' pipeline"
        ),
        "fits": fits,
        "data": {
            "file": str(data_path),
            "sha256": data_sha256,
            "split": split,
            "seed": seed,
            "n_requested": n,
            "n_alpha_requested": n_alpha,
            "n_failed": sum(not r["ok"] for r in records),
            "draw": (
                "numpy default_rng(seed).choice(split rows, n, replace=False), in draw "
                "order; alpha on the first n_alpha"
            ),
        },
        "pipeline": {
            "rebuild": "casbo_bench.molecules.rebuild.rebuild_molecule (heavy atoms)",
            "hydrogens": "RDKit AddHs(addCoords=True), MMFF94/UFF on hydrogens only",
            "relax_iterations": relax_iterations,
            "xtb": f"GFN2-xTB single point (tblite {tblite_version}), neutral",
            "alpha": (
                f"finite field, central differences, F = {field_step} a.u."
                if n_alpha
                else "not computed"
            ),
        },
        "seconds_per_molecule": {
            "mean": float(np.mean(seconds)),
            "median": float(np.median(seconds)),
            "wall_this_run": round(wall, 1),
        },
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_calibration(out, record, records)
    partial.unlink(missing_ok=True)
    partial.with_suffix(".json").unlink(missing_ok=True)
    return record


def write_calibration(
    out: str | os.PathLike[str], record: Mapping[str, Any], molecules: Sequence[Mapping[str, Any]]
) -> Path:
    """Write ``calibration.json``, ``molecules.csv`` and the sealed manifest into ``out``."""
    out = Path(out)
    write_text_atomically(out / CALIBRATION_FILE, json.dumps(record, indent=2) + "\n")
    write_text_atomically(out / MOLECULES_FILE, _csv_text(molecules))
    files = {
        name: {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size}
        for name in (CALIBRATION_FILE, MOLECULES_FILE)
    }
    manifest = {
        "model": "linear calibration of GFN2-xTB to QM9 DFT properties",
        "files": files,
        "fits": record["fits"],
        "data": record["data"],
    }
    return write_manifest(out, manifest)


def load_calibration(folder: str | os.PathLike[str] = CALIBRATION_FOLDER) -> dict[str, LinearFit]:
    """The stored fits by QM9 property, verified against the folder's sealed manifest.

    Raises:
        CalibrationError: the folder, its manifest or ``calibration.json`` is missing or
            does not match (the message gives the command that writes it).
    """
    folder = Path(folder)
    if not (folder / MANIFEST_FILE).is_file():
        raise CalibrationError(
            f"no xTB calibration at {folder}; write one with "
            f"`{CALIBRATION_COMMAND.format(folder=folder)}`"
        )
    try:
        verified = read_checkpoint(folder, names=(CALIBRATION_FILE,), attempts=1)
    except CheckpointError as error:
        raise CalibrationError(
            f"the xTB calibration at {folder} is damaged ({error}); restore it "
            f"(`git checkout -- {folder}`) or rewrite it with "
            f"`{CALIBRATION_COMMAND.format(folder=folder)}`"
        ) from None
    record = json.loads(verified.contents[CALIBRATION_FILE])
    return {name: LinearFit.from_record(fit) for name, fit in record["fits"].items()}
