"""The benchmark's tables: final loss, significance against the reference, ERT, and the views
of :mod:`casbo_bench.analysis.views` (runtime ECDF, fixed budgets, ranks).

:func:`build_tables` turns validated traces (:func:`casbo_bench.traces.load_traces`)
into frames; :func:`write_tables` validates every frame against its schema
(:mod:`casbo_bench.schemas.tables`) and writes each as CSV (full precision, for machines),
Markdown (for people) and LaTeX (booktabs, for the paper), numbers in scientific notation
with three significant digits in the last two.

The final-loss summaries are over complete runs (:func:`casbo_bench.schemas.trace.
complete_runs`); a run whose repetition failed (trace ``status`` failed) counts as +inf in
the tests, the win matrix, the fixed-budget and rank tables (:func:`judged`), as an
unsuccessful run in the ERT and the runtime ECDF (once it failed), and the final-loss table
counts the failed runs and the failed evaluations of each cell.

Two measures of a run are reported (docs/method.md, section 4):

- best-so-far at the budget: the lowest loss of any sample evaluated within the budget, the
  headline on sequential problems (what a user of targeted generation keeps);
- fresh-sample: the mean loss of new samples drawn after the budget from what the method
  hands over, a measure of the tuned sampler rather than of one sample. What is handed over
  differs: a law for some methods, one point (the best candidate, repeated) for others; the
  final-loss table says which in its ``fresh_kind`` column and a footnote, read from each
  optimizer's own declaration (:func:`registered_fresh_kinds`).

>>> tables = build_tables(load_traces(paths), reference="casbo")  # doctest: +SKIP
>>> write_tables(tables, "results/quick/tables")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from casbo_bench._registry import PluginRegistry
from casbo_bench.analysis.ert import (
    DEFAULT_RULE,
    TargetRule,
    as_rule,
    expected_running_time,
    infinite_share,
)
from casbo_bench.analysis.stats import bootstrap_median_ci, compare_to_reference, holm_adjust
from casbo_bench.analysis.stats import verdict as call_verdict
from casbo_bench.analysis.views import (
    DEFAULT_FIXED_BUDGETS,
    fixed_budget_table,
    rank_table,
    runtime_ecdf,
)
from casbo_bench.documents import html_document, latex_table, markdown_document
from casbo_bench.errors import UserFacingError
from casbo_bench.files import write_all_or_nothing
from casbo_bench.schemas.tables import validate_table
from casbo_bench.schemas.trace import CELL_KEYS, FAILED, RUN_KEYS, SETTING_KEYS, complete_runs
from casbo_bench.seeding import derive_rng

TABLE_HEADINGS: dict[str, str] = {
    "final_loss": "Final loss per method and setting (best-so-far at the budget; fresh-sample)",
    "significance": "Each method against the reference: best-so-far loss at the budget",
    "significance_fresh": "Each method against the reference: fresh-sample loss",
    "ert": "Expected running time (ERT) at pre-registered targets",
    "ert_inf_share": "Share of the ERT table's cells that no run solved (ERT = inf), per target",
    "ecdf": "Runtime ECDF: share of (run, target) pairs solved within e evaluations",
    "fixed_budget": "Best-so-far loss at fixed budgets",
    "ranks": "Mean rank of each method over seeds, at matched budgets",
}
"""Table name -> the heading line of its Markdown file and LaTeX comment."""

TABLE_TITLES: dict[str, str] = {
    "final_loss": (
        "Final loss over repetition seeds, per method x problem x d x K x scoring. "
        "best_*: best-so-far loss at the budget (the headline measure on sequential "
        "problems: the best sample evaluated within the budget); best_ci_*: 95% bootstrap "
        "interval of its median. fresh_*: fresh-sample loss (the mean loss of new samples "
        "drawn after the budget from what the method hands over), over the n_fresh seeds "
        "that recorded it; fresh_kind says what that is (see the note under the table). "
        "q25 and q75 bound the interquartile range; sd is over seeds. n_seeds counts the "
        "complete runs, the only ones summarized; failed_runs counts the runs "
        "whose repetition failed (left out like missing seeds), failed_evaluations the "
        "evaluations of all the cell's runs whose black box returned NaN or infinity or "
        "raised (never in best-so-far). min_evaluations is the fewest evaluations of any "
        "run of the cell (a failed run may stop before the budget)."
    ),
    "significance": (
        "Each method against the reference on best-so-far loss at the budget, per problem x "
        "d x K x scoring. Paired Wilcoxon signed-rank test over seeds (the same seed is the "
        "same problem instance), Mann-Whitney rank-sum where the seeds differ; p_holm is "
        "Holm-adjusted over every row of this table. median_difference is method - "
        "reference (negative: the method reaches lower losses); win_fraction counts ties as "
        "1/2. min_attainable_p is the smallest p the exact test can give with these sample "
        "sizes (2/2^n for n paired seeds: n = 3 cannot go below 0.25)."
    ),
    "significance_fresh": (
        "As the significance table, on the fresh-sample loss (the mean loss of new samples "
        "drawn after the budget from what each method hands over), for the seeds where both "
        "methods recorded it; Holm-adjusted over the rows of this table. A method whose "
        "fresh_kind is point (final_loss table) hands over its best candidate, so its "
        "fresh-sample loss is that one point's, not a tuned sampler's."
    ),
    "ert": (
        "Expected running time (COCO) at targets fixed in config before any run (f* = 0, so "
        "a loss is an optimality gap; targets never depend on the budget and are the same "
        "for every method of a setting). target_rule relative: target = level x initial_gap, "
        "where initial_gap is "
        "the setting's median initial gap (the median over all its runs, every method "
        "pooled, of the loss of the first evaluation); absolute: target = level. ERT = "
        "evaluations spent by all runs until each reached the target (or in all, if it "
        "never did) / the number of runs that reached it; inf when none did."
    ),
    "ert_inf_share": (
        "Per target level of the ERT table (level: a fraction of the initial gap under "
        "relative targets, the loss under absolute ones; the last row, level n/a, is every "
        "level together): cells (method x problem x d x K x scoring), infinite (cells whose "
        "ERT is inf: no run reached the target within its budget) and share_infinite."
    ),
    "ecdf": (
        "Runtime ECDF (COCO) of each method over this group's settings and targets: "
        "fraction = share of the (run, target) pairs whose run reached the target within "
        "its first `evaluations` evaluations (runs: every setting and seed of the method; "
        "pairs = runs x targets; a failed run counts only the targets it reached before "
        "failing). Rows stop at the method's budget (method_budget). ci_low and ci_high: "
        "percentile bootstrap band at level `confidence`, runs resampled within each "
        "setting. The figure ecdf.pdf draws these numbers."
    ),
    "fixed_budget": (
        "Best-so-far loss after `budget` evaluations, per problem x d x K x scoring, budget "
        "and method: median and interquartile range over the runs (a failed run counts as "
        "inf). Budgets: the pre-registered fixed budgets (budget_names 10d = 10 x d "
        "evaluations, ...) up to the setting's full budget, the full budget ('full') and "
        "every smaller method budget ('cap'); a method appears only at budgets within its "
        "own (method_budget)."
    ),
    "ranks": (
        "Per problem x d x K x scoring and budget: the methods whose budget reaches "
        "`budget` (those left out have a smaller budget and are ranked at their own) are "
        "ranked at every seed on their best-so-far after `budget` evaluations (1 = lowest; "
        "ties share ranks; a failed run counts as inf); mean_rank is over the n_seeds seeds "
        "where all of them ran, place = 1 + the methods with a lower mean rank. winner and "
        "runner_up: the two lowest mean ranks; p_value: paired two-sided Wilcoxon "
        "signed-rank test of winner against runner-up, p_holm Holm-adjusted over every "
        "(setting, budget) of this table; significant: p_holm < alpha with the winner lower. "
        "The pair is picked from the same data: a description, not a registered test (the "
        "claims ledger holds those)."
    ),
}
"""Table name -> the paragraph under its heading: what every column means."""

_SIGNIFICANCE_COLUMNS: dict[str, str] = {
    "problem": "str",
    "d": "int64",
    "K": "int64",
    "scoring": "str",
    "method": "str",
    "reference": "str",
    "test": "str",
    "n_method": "int64",
    "n_reference": "int64",
    "n_pairs": "int64",
    "statistic": "float64",
    "p_value": "float64",
    "min_attainable_p": "float64",
    "p_holm": "float64",
    "alpha": "float64",
    "median_difference": "float64",
    "win_fraction": "float64",
    "verdict": "str",
}
"""Column -> dtype of a significance table, in the order written."""


FRESH_KIND_NOTES: dict[str, str] = {
    "law": "new draws from the law the method adapted (random search: the unguided sampler)",
    "point": (
        "the method's best candidate repeated (a latent method's later noises are still "
        "fresh): its fresh_* is that one point's loss again, not a tuned sampler's; compare "
        "fresh_* only between methods of one fresh_kind"
    ),
}
"""fresh_kind -> what a method's fresh samples are (the tables' footnote)."""


class MissingReferenceError(UserFacingError, ValueError):
    """The reference method is absent from the traces, or from some settings."""


class UnknownOptimizerError(UserFacingError, ValueError):
    """A trace's optimizer is not registered, so its fresh kind is unknown."""


def registered_fresh_kinds() -> dict[str, str]:
    """Optimizer -> ``fresh_kind`` (``law`` or ``point``) as each optimizer's own file
    declares it, read from the sources by the plugin registry: nothing of the optimizers is
    imported (the analysis never runs one)."""
    entries = PluginRegistry("casbo_bench.optimizers", object).entries
    return {name: entry.fresh_kind for name, entry in entries.items()}


def method_fresh_kinds(
    traces: pd.DataFrame, optimizer_kinds: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Method -> its optimizer's fresh kind.

    Args:
        traces: validated traces (their ``method`` and ``optimizer`` columns).
        optimizer_kinds: optimizer -> fresh kind (default :func:`registered_fresh_kinds`).

    Raises:
        UnknownOptimizerError: a method's optimizer has no fresh kind.
    """
    kinds = registered_fresh_kinds() if optimizer_kinds is None else optimizer_kinds
    pairs = traces[["method", "optimizer"]].drop_duplicates()
    unknown = sorted(set(pairs["optimizer"]) - set(kinds))
    if unknown:
        raise UnknownOptimizerError(
            f"the traces' optimizer(s) {unknown} are not registered here, so whether their "
            f"fresh samples come from a law or repeat a point is unknown; aggregate with the "
            f"casbo-bench checkout that ran them"
        )
    return {str(method): kinds[str(optimizer)] for method, optimizer in pairs.itertuples(False)}


def fresh_kind_notes(methods: Mapping[str, str]) -> list[str]:
    """The footnote of a table with a ``fresh_kind`` column, one line per kind present:
    what the kind means and which of ``methods`` (method -> kind) have it."""
    named = {kind: sorted(m for m, k in methods.items() if k == kind) for kind in FRESH_KIND_NOTES}
    return [
        f"fresh_kind {kind}: {note} ({', '.join(named[kind])})."
        for kind, note in FRESH_KIND_NOTES.items()
        if named[kind]
    ]


def final_by_run(traces: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its values at the last evaluation it recorded.

    Args:
        traces: validated traces (see :func:`load_traces`).

    Returns:
        A frame with the :data:`RUN_KEYS` columns and ``budget``, ``evaluations`` (the last
        evaluation index: the budget for a complete run), ``best_so_far`` (the best loss at
        that point), ``fresh_sample_loss``, ``safeguard_events``, ``status`` and
        ``failed_evaluations`` (the run's failed evaluations); sorted by run.
    """
    if traces.empty:
        raise ValueError("there are no traces to summarize")
    ordered = traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable")
    runs = ordered.groupby(list(RUN_KEYS), sort=True)
    last = runs.tail(1)
    columns = [
        *RUN_KEYS,
        "budget",
        "evaluation",
        "best_so_far",
        "fresh_sample_loss",
        "safeguard_events",
        "status",
    ]
    return (
        last[columns]
        .rename(columns={"evaluation": "evaluations"})
        .assign(failed_evaluations=runs["failed"].sum().to_numpy(dtype=np.int64))
        .reset_index(drop=True)
    )


def _describe_setting(setting: Sequence[object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in zip(SETTING_KEYS, setting, strict=True))


def _check_reference(finals: pd.DataFrame, reference: str) -> None:
    methods = sorted(finals["method"].unique())
    if reference not in methods:
        raise MissingReferenceError(
            f"the reference method {reference!r} is not in the traces (methods: "
            f"{', '.join(methods)}); pass reference=<one of them> or add its traces"
        )
    settings = finals[list(SETTING_KEYS)].drop_duplicates()
    covered = finals.loc[finals["method"] == reference, list(SETTING_KEYS)].drop_duplicates()
    lacking = settings.merge(covered, how="left", indicator=True).query("_merge == 'left_only'")
    if not lacking.empty:
        listed = "; ".join(
            _describe_setting(row) for row in lacking[list(SETTING_KEYS)].itertuples(index=False)
        )
        raise MissingReferenceError(
            f"the reference method {reference!r} has no runs in {len(lacking)} setting(s): "
            f"{listed}; run it there, or leave those settings' traces out"
        )


def _summary(values: pd.Series, prefix: str) -> dict[str, float]:
    array = values.to_numpy(dtype=np.float64)
    if array.size == 0:
        return {f"{prefix}_{name}": np.nan for name in ("median", "q25", "q75", "mean", "sd")}
    q25, median, q75 = np.quantile(array, [0.25, 0.5, 0.75])
    return {
        f"{prefix}_median": float(median),
        f"{prefix}_q25": float(q25),
        f"{prefix}_q75": float(q75),
        f"{prefix}_mean": float(array.mean()),
        f"{prefix}_sd": float(array.std(ddof=1)) if array.size >= 2 else np.nan,
    }


def final_loss_table(
    finals: pd.DataFrame,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    *,
    fresh_kinds: Mapping[str, str],
) -> pd.DataFrame:
    """Summaries over seeds of each cell's best-so-far at the budget and fresh-sample loss.

    Args:
        finals: one row per run (:func:`final_by_run`), failed runs included: they are
            counted (``failed_runs``, with their ``failed_evaluations``), never summarized.
        fresh_kinds: method -> ``law`` or ``point`` (:func:`method_fresh_kinds`), the
            ``fresh_kind`` column.
        seed: the seed of the bootstrap; each cell's resamples come from a generator derived
            from it and the cell's name, so adding a method changes no other row.
        confidence: the level of the bootstrap interval of the median.
        n_resamples: bootstrap resamples.

    Returns:
        The ``final_loss`` table (columns in :data:`casbo_bench.schemas.tables`), one row per
        cell, sorted by cell.

    Raises:
        ValueError: the runs of one cell have different budgets.
    """
    rows: list[dict[str, object]] = []
    for cell, runs in finals.groupby(list(CELL_KEYS), sort=True):
        budgets = runs["budget"].unique()
        if budgets.size != 1:
            raise ValueError(
                f"the runs of {dict(zip(CELL_KEYS, cell, strict=True))} have different budgets "
                f"{sorted(budgets.tolist())}; a cell must share one budget"
            )
        complete = complete_runs(runs)
        best = complete["best_so_far"]
        fresh = complete["fresh_sample_loss"].dropna()
        low, high = np.nan, np.nan
        if len(best):
            interval = bootstrap_median_ci(
                best.to_numpy(), derive_rng("bootstrap", seed, *cell), confidence, n_resamples
            )
            low, high = interval.low, interval.high
        rows.append(
            {
                **dict(zip(CELL_KEYS, cell, strict=True)),
                "n_seeds": len(complete),
                "budget": int(budgets[0]),
                "min_evaluations": int(runs["evaluations"].min()),
                **_summary(best, "best"),
                "best_ci_low": low,
                "best_ci_high": high,
                "fresh_kind": fresh_kinds[str(cell[0])],
                "n_fresh": len(fresh),
                **_summary(fresh, "fresh"),
                "failed_runs": len(runs) - len(complete),
                "failed_evaluations": int(runs["failed_evaluations"].sum()),
            }
        )
    counts = (
        "d",
        "K",
        "n_seeds",
        "budget",
        "min_evaluations",
        "n_fresh",
        "failed_runs",
        "failed_evaluations",
    )
    return pd.DataFrame(rows).astype(dict.fromkeys(counts, "int64"))


def judged(finals: pd.DataFrame, measure: str) -> pd.DataFrame:
    """``finals`` with ``measure`` as the tests and the win matrix judge it.

    A failed run counts as +inf: worse than any value, and tied with another failed run. So a
    method never gains from the runs it lost (leaving them out would drop exactly its
    hardest seeds). A complete run without a value (no fresh-sample loss recorded) is left
    out.
    """
    value = finals[measure].where(finals["status"] != FAILED, np.inf)
    return finals.assign(**{measure: value}).dropna(subset=[measure])


def significance_table(
    finals: pd.DataFrame, reference: str, measure: str = "best_so_far", alpha: float = 0.05
) -> pd.DataFrame:
    """Every method against ``reference`` per setting, on one measure, Holm over the table.

    Args:
        finals: one row per run (:func:`final_by_run`).
        reference: the method every other method is compared with.
        measure: ``"best_so_far"`` or ``"fresh_sample_loss"``; a failed run counts as
            +inf, a complete run without a value is left out (:func:`judged`).
        alpha: the family-wise error rate of the verdicts.

    Returns:
        The ``significance`` table: one row per setting and method other than the reference.
    """
    rows: list[dict[str, object]] = []
    for setting, runs in finals.groupby(list(SETTING_KEYS), sort=True):
        reference_runs = runs[runs["method"] == reference]
        for method, method_runs in runs[runs["method"] != reference].groupby("method", sort=True):
            own, ref = judged(method_runs, measure), judged(reference_runs, measure)
            if own.empty or ref.empty:
                continue
            comparison = compare_to_reference(own[measure], own["seed"], ref[measure], ref["seed"])
            rows.append(
                {
                    **dict(zip(SETTING_KEYS, setting, strict=True)),
                    "method": method,
                    "reference": reference,
                    "test": comparison.test,
                    "n_method": comparison.n_method,
                    "n_reference": comparison.n_reference,
                    "n_pairs": comparison.n_pairs,
                    "statistic": comparison.statistic,
                    "p_value": comparison.p_value,
                    "min_attainable_p": comparison.min_attainable_p,
                    "median_difference": comparison.median_difference,
                    "win_fraction": comparison.win_fraction,
                }
            )
    adjusted = ("p_holm", "alpha", "verdict")
    table = pd.DataFrame(rows, columns=[c for c in _SIGNIFICANCE_COLUMNS if c not in adjusted])
    table["p_holm"] = holm_adjust(table["p_value"].to_numpy(dtype=np.float64))
    table["alpha"] = float(alpha)
    table["verdict"] = [
        call_verdict(p, difference, wins, alpha)
        for p, difference, wins in zip(
            table["p_holm"], table["median_difference"], table["win_fraction"], strict=True
        )
    ]
    return table[list(_SIGNIFICANCE_COLUMNS)].astype(_SIGNIFICANCE_COLUMNS)


def build_tables(
    traces: pd.DataFrame,
    reference: str = "casbo",
    targets: TargetRule | Sequence[float] | ArrayLike = DEFAULT_RULE,
    alpha: float = 0.05,
    seed: int = 0,
    fixed_budgets: Sequence[str | int] = DEFAULT_FIXED_BUDGETS,
    confidence: float = 0.95,
    fresh_kinds: Mapping[str, str] | None = None,
) -> dict[str, pd.DataFrame]:
    """All tables of the benchmark from validated traces.

    Args:
        traces: validated traces (:func:`casbo_bench.traces.load_traces`).
        reference: the method every other method is tested against (CASBO by default).
        targets: the targets of the ERT and the runtime ECDF, pre-registered: a
            :class:`~casbo_bench.analysis.ert.TargetRule` (default: fractions 1e-1 ... 1e-6
            of each setting's median initial gap), or loss levels (absolute targets).
        alpha: the family-wise error rate of the significance verdicts and rank marks.
        seed: the seed of the bootstrap intervals (final loss, runtime ECDF).
        fixed_budgets: the fixed budgets besides every method's own ("10d" = 10 x d).
        confidence: the level of the runtime ECDF's bootstrap band.
        fresh_kinds: optimizer -> ``law`` or ``point`` (default: as each registered
            optimizer declares it, :func:`registered_fresh_kinds`).

    Returns:
        ``{"final_loss", "significance", "significance_fresh", "ert", "ert_inf_share",
        "fixed_budget", "ranks", "ecdf"}`` -> frame, each satisfying its schema in
        :mod:`casbo_bench.schemas.tables`. The final-loss table summarizes complete runs and
        counts the failed ones; the tests, fixed-budget and rank tables count a failed run
        as +inf (:func:`judged`), the ERT and ECDF as an unsuccessful run of the evaluations
        it spent.

    Raises:
        MissingReferenceError: the reference method is absent, or has no runs in a setting
            where other methods have them.
        UnknownOptimizerError: a trace's optimizer has no fresh kind.
    """
    finals = final_by_run(traces)
    _check_reference(finals, reference)
    rule = as_rule(targets)
    kinds = method_fresh_kinds(traces, fresh_kinds)
    tables = {
        "final_loss": final_loss_table(finals, seed=seed, fresh_kinds=kinds),
        "significance": significance_table(finals, reference, "best_so_far", alpha),
        "significance_fresh": significance_table(finals, reference, "fresh_sample_loss", alpha),
        # A failed run is an unsuccessful run that spent the evaluations it made.
        "ert": expected_running_time(traces, rule),
    }
    ordered = {name: _reading_order(frame, reference) for name, frame in tables.items()}
    return {
        **ordered,
        "ert_inf_share": infinite_share(ordered["ert"]),
        "fixed_budget": fixed_budget_table(traces, fixed_budgets),
        "ranks": rank_table(traces, alpha),
        "ecdf": runtime_ecdf(traces, rule, seed=seed, confidence=confidence),
    }


def _reading_order(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Rows by setting, then the reference before the other methods, then hardest target last."""
    keys = [*SETTING_KEYS, "method"] + (["target"] if "target" in frame.columns else [])

    def rank(column: pd.Series) -> pd.Series:
        if column.name == "method":
            return column.map(lambda name: (name != reference, name))
        return column

    ascending = [True] * (len(SETTING_KEYS) + 1) + [False] * (len(keys) - len(SETTING_KEYS) - 1)
    return frame.sort_values(keys, ascending=ascending, key=rank, ignore_index=True)


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Validate every table, then write each as ``<name>.csv``, ``.md``, ``.tex`` and
    ``.html`` (the Markdown as a page, which the Snakemake report shows inline). A table with
    a ``fresh_kind`` column gets its footnote (:func:`fresh_kind_notes`) in all but the CSV.

    Nothing is written unless every table passes its schema; files are written to temporary
    names in ``out_dir`` and renamed into place only when all are written, so a failure
    leaves no partial table behind (and no earlier table overwritten by half).

    Returns:
        The written paths, four per table, in the order of ``tables``.

    Raises:
        TableValidationError: a table has no schema or fails it (nothing is written).
    """
    out = Path(out_dir)
    documents: dict[Path, str] = {}
    for name, frame in tables.items():
        validate_table(name, frame)
        heading, title = f"{TABLE_HEADINGS[name]} ({name})", TABLE_TITLES[name]
        notes = (
            fresh_kind_notes(dict(zip(frame["method"], frame["fresh_kind"], strict=True)))
            if "fresh_kind" in frame.columns
            else []
        )
        markdown = markdown_document(frame, heading, title, notes=notes)
        documents[out / f"{name}.csv"] = frame.to_csv(index=False, lineterminator="\n")
        documents[out / f"{name}.md"] = markdown
        documents[out / f"{name}.tex"] = latex_table(frame, heading, title, notes)
        documents[out / f"{name}.html"] = html_document(markdown)
    return write_all_or_nothing(documents)
