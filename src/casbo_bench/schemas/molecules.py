"""Schemas of the molecule benchmark's two tables, checked before they are written.

The molecule analysis (``analysis.molecules``) writes, from the traces of the molecule
tasks (scores maximized; the trace's loss is ``-score``):

- ``molecule_scores``: one row per task and method (:data:`SCORE_COLUMNS`): the best score
  within the budget and the final (fresh-sample) score over seeds, each method against the
  reference (Holm-adjusted p-value and verdict), and the quality of the optimized molecules;
- ``molecule_best``: one row per run (:data:`BEST_COLUMNS`): its best molecule, with the
  property predictor's values beside GFN2-xTB's.

Beyond dtypes and ranges the schemas check what must hold between columns: q25 <= median <=
q75, a p-value and a difference exactly where the method was tested, the reference's own
rows marked so, a SMILES exactly for a valid best molecule, one row per task and method
(resp. run).

>>> validate_molecule_table("molecule_best", frame)  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from casbo_bench.schemas.tables import (
    _at_most,
    _count,
    _finite,
    _ordered,
    _probability,
    _real,
    _rows,
    _unique,
    validate_named,
)
from casbo_bench.schemas.trace import NON_EMPTY
from casbo_bench.schemas.vocabulary import VERDICTS

REFERENCE_VERDICT = "reference"
"""The verdict column of the reference's own rows."""

NOT_TESTED = "not tested"
"""The verdict where no test was possible (the reference did not run on the task)."""

MOLECULE_VERDICTS: tuple[str, ...] = (*VERDICTS, REFERENCE_VERDICT, NOT_TESTED)

MEASURES: tuple[str, ...] = ("best", "compute", "final")
"""The scores compared: best within equal black-box calls (``calls``), best within equal
denoiser evaluations (``denoiser_evals``), and final (fresh samples after the budgets)."""

STATISTICS: tuple[str, ...] = ("median", "q25", "q75", "difference", "p_holm", "verdict")
"""Per measure: its median and quartiles over seeds, and the comparison with the reference."""

OPTIMIZED_QUALITIES: tuple[str, ...] = ("valid", "connected", "valid_table", "stable", "unique")
"""Shares of the optimized molecules (each run's last evaluations), pooled over seeds."""

SCORE_COLUMNS: tuple[str, ...] = (
    "task",
    "method",
    "n_seeds",
    "budget",
    "calls",
    "denoiser_evals",
    *(f"{measure}_{statistic}" for measure in MEASURES for statistic in STATISTICS),
    *(f"optimized_{quality}" for quality in OPTIMIZED_QUALITIES),
    "best_valid",
    "best_connected",
    "duplicate_share",
    "checkpoint",
)
"""The columns of the ``molecule_scores`` table, in order."""

CHECKED_PROPERTIES: tuple[str, ...] = (
    "predicted_alpha",
    "predicted_gap",
    "predicted_mu",
    "xtb_dipole",
    "xtb_gap",
)
"""The property columns of the best-molecule table (predictor beside GFN2-xTB)."""

BEST_COLUMNS: tuple[str, ...] = (
    "task",
    "method",
    "seed",
    "d",
    "K",
    "best_score",
    "evaluation",
    "smiles",
    "valid",
    "fragments",
    "valid_table",
    "stable",
    *CHECKED_PROPERTIES,
)
"""The columns of the ``molecule_best`` table, in order."""


def _tested_iff_compared(measure: str) -> pa.Check:
    """A p-value and a difference exactly where the verdict comes from a test."""

    def rule(frame: pd.DataFrame) -> pd.Series:
        tested = ~frame[f"{measure}_verdict"].isin([REFERENCE_VERDICT, NOT_TESTED])
        present = frame[[f"{measure}_p_holm", f"{measure}_difference"]].notna().all(axis=1)
        return tested == present

    columns = [f"{measure}_{name}" for name in ("verdict", "p_holm", "difference")]
    return _rows(
        columns,
        rule,
        f"{measure}_p_holm and {measure}_difference must be given exactly when "
        f"{measure}_verdict comes from a test",
    )


def _measure_columns(measure: str) -> dict[str, pa.Column]:
    return {
        # NaN where no seed completed a sample within the cost (a costly steering sweep).
        f"{measure}_median": _real(_finite, nullable=measure != "final"),
        f"{measure}_q25": _real(_finite, nullable=measure != "final"),
        f"{measure}_q75": _real(_finite, nullable=measure != "final"),
        f"{measure}_difference": _real(_finite, nullable=True),
        f"{measure}_p_holm": _real(_probability, nullable=True),
        f"{measure}_verdict": pa.Column(
            str,
            pa.Check.isin(list(MOLECULE_VERDICTS), error=f"must be one of {MOLECULE_VERDICTS}"),
        ),
    }


def _reference_consistent(frame: pd.DataFrame) -> pd.Series:
    """The rows marked as the reference's are one method's, the same for both measures."""
    marked = frame["best_verdict"] == REFERENCE_VERDICT
    same = marked == (frame["final_verdict"] == REFERENCE_VERDICT)
    one_method = frame.loc[marked, "method"].nunique() <= 1
    return same & one_method


_TASK_AND_METHOD = {"task": pa.Column(str, NON_EMPTY), "method": pa.Column(str, NON_EMPTY)}

MOLECULE_SCORES_SCHEMA = pa.DataFrameSchema(
    columns={
        **_TASK_AND_METHOD,
        "n_seeds": _count(1),
        "budget": _count(1),
        "calls": _count(1),
        "denoiser_evals": _count(0),
        **{
            name: column
            for measure in MEASURES
            for name, column in _measure_columns(measure).items()
        },
        **{
            f"optimized_{quality}": _real(_probability, nullable=quality == "unique")
            for quality in OPTIMIZED_QUALITIES
        },
        "best_valid": _real(_probability),
        "best_connected": _real(_probability),
        "duplicate_share": _real(_probability),
        "checkpoint": pa.Column(str),
    },
    checks=[
        _unique(["task", "method"]),
        *(_ordered(f"{m}_q25", f"{m}_median", f"{m}_q75") for m in MEASURES),
        *(_tested_iff_compared(measure) for measure in MEASURES),
        _rows(
            ["method", "best_verdict", "final_verdict"],
            _reference_consistent,
            "the rows with verdict 'reference' must be one method's, in both measures",
        ),
        _at_most("optimized_connected", "optimized_valid", "in one piece implies valid"),
        _at_most("best_connected", "best_valid", "in one piece implies valid"),
    ],
    strict=True,
    ordered=True,
    name="molecule_scores",
)
"""Best and final score per task and method, tested against the reference."""


def _smiles_iff_valid(frame: pd.DataFrame) -> pd.Series:
    return frame["smiles"].notna() == frame["valid"]


MOLECULE_BEST_SCHEMA = pa.DataFrameSchema(
    columns={
        **_TASK_AND_METHOD,
        "seed": _count(0),
        "d": _count(1),
        "K": _count(1),
        "best_score": _real(_finite),
        "evaluation": _count(1),
        "smiles": pa.Column(str, NON_EMPTY, nullable=True),
        "valid": pa.Column(bool),
        "fragments": _count(0),
        "valid_table": pa.Column(bool),
        "stable": pa.Column(bool),
        **{name: _real(nullable=True) for name in CHECKED_PROPERTIES},
    },
    checks=[
        _unique(["task", "method", "seed", "d", "K"]),
        _rows(["smiles", "valid"], _smiles_iff_valid, "smiles must be given exactly when valid"),
    ],
    strict=True,
    ordered=True,
    name="molecule_best",
)
"""Each run's best molecule, with predicted and GFN2-xTB properties."""

MOLECULE_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "molecule_scores": MOLECULE_SCORES_SCHEMA,
    "molecule_best": MOLECULE_BEST_SCHEMA,
}
"""Table name (as written) -> its schema."""


def validate_molecule_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate ``frame`` against the schema of molecule table ``name``
    (:data:`MOLECULE_SCHEMAS`) and return it unchanged.

    Raises:
        TableValidationError: ``name`` has no schema, or one or more checks failed (one
            line per failed check).
    """
    return validate_named(MOLECULE_SCHEMAS, name, frame)
