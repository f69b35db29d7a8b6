"""The error-ladder table: how far from the target each rung's molecules are, by two judges.

Reads the ladder's molecules (one validated frame per task, written by
``casbo-bench ladder-molecules``; :mod:`casbo_bench.molecules.ladder` says who is on each
rung) and writes one table, rows per task in this order:

| rung | kind | what |
|---|---|---|
| ``naive`` | baseline | random training molecules |
| ``n-atoms`` | baseline | random training molecules of the task's size |
| ``unguided`` | baseline | unguided samples of the respaced sampler |
| each method | method | the best molecule of each run |
| ``predictor test MAE`` | floor | the predictor's error on QM9's test split (its manifest) |
| ``xTB calibration MAE`` | floor | the xTB -> DFT line's error on its QM9 molecules |
| ``naive``, ... ``L-bound`` (published) | published | EDM's protocol, **not comparable** |

For a rung of molecules, with ``e_p = |predicted - target|`` and ``e_x = |xTB_DFT - target|``:

    mae_predictor = mean(e_p)   over molecules the task scores (valid, one piece)
    mae_xtb       = mean(e_x)   over those whose xTB calculation succeeded
    predictor_minus_xtb = mean(e_p - e_x)   over molecules with both

each with a seeded percentile-bootstrap interval of the mean. The predictor's test MAE is
no floor for molecules optimized against that predictor, so xTB judges them too. xTB has its
own error (the ``xTB calibration MAE`` row): a method that hit the target exactly would show
``mae_xtb`` near that floor and ``predictor_minus_xtb`` near minus it; a method games the
predictor to the extent its ``mae_xtb`` stands above the xTB floor while its
``mae_predictor`` is below the predictor's test MAE.

The published values (:data:`PUBLISHED_FILE`) are all-atom conditional generation judged by
EDM's classifiers: a different model, hydrogens and protocol, printed for orientation only,
``comparable`` false.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from casbo_bench.seeding import derive_rng

PUBLISHED_FILE = "data/published_property_errors.json"
"""The published errors, in the package (source and caveats inside the file)."""

PREDICTOR_FLOOR = "predictor test MAE"
XTB_FLOOR = "xTB calibration MAE"
PUBLISHED_SUFFIX = " (published, not comparable)"

UNIT_FACTORS: dict[tuple[str, str], float] = {("meV", "eV"): 1e-3}
"""Published unit -> task unit factors where they differ."""

TABLE_COLUMNS: tuple[str, ...] = (
    "task",
    "quantity",
    "unit",
    "target_percentile",
    "target",
    "rung",
    "kind",
    "comparable",
    "n_molecules",
    "n_scored",
    "mae_predictor",
    "mae_predictor_low",
    "mae_predictor_high",
    "n_xtb",
    "mae_xtb",
    "mae_xtb_low",
    "mae_xtb_high",
    "predictor_minus_xtb",
    "predictor_minus_xtb_low",
    "predictor_minus_xtb_high",
    "reference_mae",
)
"""The table's columns; ``reference_mae`` holds a floor's or a published value."""


def published_errors() -> dict[str, Any]:
    """The published record (description, source, rung names, values by property)."""
    text = resources.files("casbo_bench.analysis").joinpath(PUBLISHED_FILE).read_text("utf-8")
    return dict(json.loads(text))


def bootstrap_mean_ci(
    values: Any, rng: np.random.Generator, confidence: float, n_resamples: int
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (NaN, NaN when empty).

    >>> bootstrap_mean_ci([1.0, 1.0], np.random.default_rng(0), 0.95, 100)
    (1.0, 1.0)
    """
    array = np.asarray(values, dtype=np.float64)
    if len(array) == 0:
        return float("nan"), float("nan")
    draws = rng.integers(0, len(array), size=(n_resamples, len(array)))
    means = array[draws].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def _mean_with_ci(
    values: Any, task: str, rung: str, what: str, seed: int, confidence: float, resamples: int
) -> tuple[float, float, float]:
    array = np.asarray(values, dtype=np.float64)
    rng = derive_rng("ladder-bootstrap", task, rung, what, seed)
    low, high = bootstrap_mean_ci(array, rng, confidence, resamples)
    return (float(array.mean()) if len(array) else float("nan")), low, high


def _rung_row(
    molecules: pd.DataFrame, task: str, rung: str, seed: int, confidence: float, resamples: int
) -> dict[str, Any]:
    scored = molecules[molecules["scorable"]]
    both = scored[scored["xtb_ok"]]
    predictor = _mean_with_ci(
        scored["error_predictor"], task, rung, "predictor", seed, confidence, resamples
    )
    xtb = _mean_with_ci(both["error_xtb"], task, rung, "xtb", seed, confidence, resamples)
    gap = _mean_with_ci(
        both["error_predictor"] - both["error_xtb"], task, rung, "gap", seed, confidence, resamples
    )
    return {
        "rung": rung,
        "kind": str(molecules["kind"].iloc[0]),
        "comparable": True,
        "n_molecules": len(molecules),
        "n_scored": len(scored),
        "mae_predictor": predictor[0],
        "mae_predictor_low": predictor[1],
        "mae_predictor_high": predictor[2],
        "n_xtb": len(both),
        "mae_xtb": xtb[0],
        "mae_xtb_low": xtb[1],
        "mae_xtb_high": xtb[2],
        "predictor_minus_xtb": gap[0],
        "predictor_minus_xtb_low": gap[1],
        "predictor_minus_xtb_high": gap[2],
        "reference_mae": float("nan"),
    }


def _reference_row(rung: str, kind: str, value: float, comparable: bool) -> dict[str, Any]:
    return {
        "rung": rung,
        "kind": kind,
        "comparable": comparable,
        "n_molecules": 0,
        "n_scored": 0,
        "n_xtb": 0,
        "reference_mae": float(value),
    }


def ladder_rows(
    molecules: pd.DataFrame,
    meta: Mapping[str, Any],
    methods_order: Sequence[str] = (),
    seed: int = 0,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> pd.DataFrame:
    """The table's rows of one task (module docstring).

    Args:
        molecules: the task's ladder molecules (:data:`casbo_bench.molecules.ladder.
            MOLECULE_COLUMNS`).
        meta: ``task``, ``quantity``, ``unit``, ``target_percentile``, ``target``,
            ``predictor_test_mae`` and ``xtb_fit_mae`` (NaN when no calibration).
        methods_order: the methods' order (others follow, sorted).
        seed: the bootstrap seed.
        confidence: the intervals' level.
        resamples: bootstrap resamples.
    """
    rows = []
    baselines = [r for r in ("naive", "n-atoms", "unguided") if r in set(molecules["rung"])]
    present = set(molecules.loc[molecules["kind"] == "method", "rung"])
    methods = [m for m in methods_order if m in present] + sorted(present - set(methods_order))
    for rung in (*baselines, *methods):
        part = molecules[molecules["rung"] == rung]
        rows.append(_rung_row(part, meta["task"], rung, seed, confidence, resamples))
    rows.append(_reference_row(PREDICTOR_FLOOR, "floor", meta["predictor_test_mae"], True))
    rows.append(_reference_row(XTB_FLOOR, "floor", meta["xtb_fit_mae"], True))
    published = published_errors()["values"].get(meta["quantity"])
    if published is not None:
        factor = UNIT_FACTORS.get((published["unit"], meta["unit"]), 1.0)
        for name, value in published.items():
            if name != "unit":
                rows.append(
                    _reference_row(name + PUBLISHED_SUFFIX, "published", value * factor, False)
                )
    frame = pd.DataFrame(rows)
    for key in ("task", "quantity", "unit", "target_percentile", "target"):
        frame[key] = meta[key]
    return frame.reindex(columns=list(TABLE_COLUMNS))


def ladder_table(
    tasks: Sequence[tuple[pd.DataFrame, Mapping[str, Any]]],
    methods_order: Sequence[str] = (),
    seed: int = 0,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> pd.DataFrame:
    """The error-ladder table of several tasks (each its molecules and meta), validated."""
    from casbo_bench.schemas.ladder import validate_ladder_table

    frames = [
        ladder_rows(molecules, meta, methods_order, seed, confidence, resamples)
        for molecules, meta in tasks
    ]
    table = pd.concat(frames, ignore_index=True)
    for column in ("n_molecules", "n_scored", "n_xtb", "target_percentile"):
        table[column] = table[column].astype("int64")
    table["comparable"] = table["comparable"].astype(bool)
    return validate_ladder_table(table)


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown: per task a header with its target, then one line per rung."""
    lines = []
    for task, part in table.groupby("task", sort=False):
        first = part.iloc[0]
        lines += [
            f"### {task}: target {first['target']:.4g} {first['unit']} "
            f"(p{first['target_percentile']} of QM9's property split)",
            "",
            "| rung | n | MAE by predictor [CI] | MAE by xTB (DFT-mapped) [CI] | "
            "predictor - xTB [CI] | reference MAE |",
            "|---|---|---|---|---|---|",
        ]
        for _, row in part.iterrows():
            intervals = " | ".join(
                _ci(row[name], row[f"{name}_low"], row[f"{name}_high"])
                for name in ("mae_predictor", "mae_xtb", "predictor_minus_xtb")
            )
            lines.append(
                f"| {row['rung']} | {_count(row)} | {intervals} | {_number(row['reference_mae'])} |"
            )
        lines.append("")
    lines.append(
        "Published rows: " + published_errors()["source"] + " Not comparable: all-atom "
        "conditional generation judged by EDM's classifier (different model, hydrogens, "
        "protocol)."
    )
    return "\n".join(lines) + "\n"


def _count(row: Any) -> str:
    if row["kind"] in ("floor", "published"):
        return ""
    return f"{row['n_molecules']} ({row['n_scored']} scored, {row['n_xtb']} xTB)"


def _number(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.3g}"


def _ci(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return ""
    return f"{value:.3g} [{low:.3g}, {high:.3g}]"


TABLE_NAME = "error_ladder"


def write_ladder(table: pd.DataFrame, out_dir: Any) -> list[Any]:
    """``error_ladder`` as CSV (full precision), Markdown and HTML in ``out_dir``."""
    from pathlib import Path

    from casbo_bench.documents import html_document
    from casbo_bench.files import write_text_atomically
    from casbo_bench.schemas.ladder import validate_ladder_table

    validate_ladder_table(table)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    document = (
        "# Error ladder: mean absolute error to the target, by the predictor and by xTB\n\n"
        + markdown(table)
    )
    return [
        write_text_atomically(out / f"{TABLE_NAME}.csv", table.to_csv(index=False)),
        write_text_atomically(out / f"{TABLE_NAME}.md", document),
        write_text_atomically(out / f"{TABLE_NAME}.html", html_document(document)),
    ]
