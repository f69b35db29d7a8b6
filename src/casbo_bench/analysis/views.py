"""Views of a benchmark group beyond the final loss: runtime ECDFs, fixed budgets, ranks, and
win fractions at matched budgets.

Every view compares methods at the same number of evaluations. A method whose budget is
capped (TuRBO at 40 of 300 evaluations in the default config) is never set against the
others' full budget: where two budgets differ, the comparison is made at the smaller one, on
the best-so-far each run had reached by then. A failed run (trace ``status`` failed) counts
as +inf at every budget, worse than any value, as in the tests
(:func:`casbo_bench.analysis.tables.judged`).

- :func:`runtime_ecdf`: per method, the share of (run, target) pairs of the group whose
  target the run had reached by evaluation e (COCO's runtime ECDF, aggregated over the
  group's settings and pre-registered targets, :class:`~casbo_bench.analysis.ert.TargetRule`),
  with a bootstrap band over runs.
- :func:`fixed_budget_table`: per setting, budget and method, the median and interquartile
  range of the best-so-far at that budget.
- :func:`rank_table`: per setting and budget, each method's mean rank over seeds, the winner
  and whether it is significantly better than the runner-up.
- :func:`matched_win_matrix`: method-versus-method win fractions, each pair at the smaller
  of its two budgets.

>>> ranks = rank_table(load_traces(paths), alpha=0.05)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import rankdata

from casbo_bench.analysis.ert import DEFAULT_RULE, TargetRule, running_times
from casbo_bench.analysis.stats import (
    WinMatrix,
    compare_to_reference,
    holm_adjust,
    verdict,
    win_fraction_matrix,
)
from casbo_bench.registration import SecondaryBudget
from casbo_bench.schemas.trace import CELL_KEYS, FAILED, RUN_KEYS, SETTING_KEYS
from casbo_bench.seeding import derive_rng

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DEFAULT_FIXED_BUDGETS: tuple[str, ...] = ("10d", "100d")
"""The fixed budgets of the default config besides every method's own budget."""

NONE_LEFT_OUT = "none"
"""The rank table's ``left_out`` where every method of the setting is compared."""

ECDF_GRID_POINTS = 50
"""Log-spaced evaluation counts of a runtime ECDF (every method's budget is added)."""


def best_at(traces: pd.DataFrame, evaluations: Sequence[int]) -> pd.DataFrame:
    """Every run's best-so-far at each of ``evaluations`` within its budget.

    Args:
        traces: validated traces.
        evaluations: evaluation counts (>= 1).

    Returns:
        One row per run and count ``e <= the run's budget``: the :data:`RUN_KEYS`,
        ``budget`` (the run's), ``failed`` (the run failed), ``at`` (= e) and ``value``: the
        run's best-so-far after e evaluations, +inf for a failed run (at every e) and before
        the first successful evaluation. It is read from the run's last row with
        ``evaluation <= e`` (rows sorted by evaluation; the first is evaluation 1), so a
        trace that keeps only evaluation 1, the rows where best-so-far changes and the last
        row gives the same values as the full trace.
    """
    ordered = traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable", ignore_index=True)
    run_id = ordered.groupby(list(RUN_KEYS), sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, run_id[1:] != run_id[:-1]])
    best = ordered["best_so_far"].to_numpy(dtype=np.float64)
    evaluation = ordered["evaluation"].to_numpy(dtype=np.int64)
    runs = ordered.loc[starts, [*RUN_KEYS, "budget"]].reset_index(drop=True)
    failed = ordered["status"].to_numpy()[starts] == FAILED
    budgets = runs["budget"].to_numpy(dtype=np.int64)
    blocks: list[pd.DataFrame] = []
    for at in sorted({int(e) for e in evaluations}):
        if at < 1:
            raise ValueError(f"evaluation counts must be >= 1; got {at}")
        within = budgets >= at
        # The last row with evaluation <= at, read by value, not position: a compact trace
        # (casbo_bench.publish) keeps only the rows where best-so-far changes. A failed run
        # is +inf whatever it recorded.
        row = starts + np.add.reduceat((evaluation <= at).astype(np.int64), starts) - 1
        value = np.where(failed, np.inf, best[row])
        blocks.append(runs[within].assign(failed=failed[within], at=at, value=value[within]))
    return pd.concat(blocks, ignore_index=True)


def _cell_budgets(traces: pd.DataFrame) -> pd.DataFrame:
    """Each cell's budget: the largest of its runs'."""
    return traces.groupby(list(CELL_KEYS), sort=True)["budget"].max().reset_index()


def matched_win_matrix(traces: pd.DataFrame, methods: Sequence[str] | None = None) -> WinMatrix:
    """Pairwise win fractions, each pair compared at the smaller of its two budgets.

    For methods a and b, in every setting both ran, ``m = min(budget_a, budget_b)``; at each
    seed both ran, a *wins* when its best-so-far after m evaluations is lower than b's
    (:func:`best_at`; a failed run is +inf, two of them tie). Entry (a, b) is

        (#{(setting, seed): a wins} + #{ties} / 2) / #{(setting, seed) cells of both}

    Args:
        traces: validated traces.
        methods: the row and column order; by default the sorted method names.

    Returns:
        A :class:`~casbo_bench.analysis.stats.WinMatrix` (``M x M`` fractions and cell
        counts; NaN on the diagonal and where no cell holds both).
    """
    order = sorted(traces["method"].unique()) if methods is None else list(methods)
    budgets = _cell_budgets(traces)
    values = best_at(traces, budgets["budget"].unique().tolist())
    cells = [*SETTING_KEYS, "seed"]
    fraction = np.full((len(order), len(order)), np.nan)
    n_cells = np.zeros((len(order), len(order)), dtype=np.int64)
    for i, first in enumerate(order):
        for j, second in enumerate(order[i + 1 :], start=i + 1):
            pair = budgets[budgets["method"].isin([first, second])]
            matched = pair.groupby(list(SETTING_KEYS))["budget"].min().rename("matched")
            own = values[values["method"].isin([first, second])].join(
                matched, on=list(SETTING_KEYS)
            )
            own = own.loc[own["at"] == own["matched"], ["method", *cells, "value"]]
            matrix = win_fraction_matrix(own, cells, [first, second])
            pair_fraction, pair_cells = matrix.fraction.to_numpy(), matrix.n_cells.to_numpy()
            fraction[i, j], fraction[j, i] = pair_fraction[0, 1], pair_fraction[1, 0]
            n_cells[i, j] = n_cells[j, i] = pair_cells[0, 1]
    return WinMatrix(
        fraction=pd.DataFrame(fraction, index=order, columns=order),
        n_cells=pd.DataFrame(n_cells, index=order, columns=order),
    )


def _quantiles(values: FloatArray, levels: Sequence[float]) -> list[float]:
    """Linear-interpolation quantiles (numpy's default) of ``values`` that may hold +inf.

    With the n values sorted, the q-quantile sits at position h = (n - 1) q: it is
    ``v[floor h] + (h - floor h)(v[ceil h] - v[floor h])``, +inf as soon as the
    interpolation gives an infinite value positive weight (numpy's own gives NaN for
    inf - inf).
    """
    ordered = np.sort(values)
    position = (ordered.size - 1) * np.asarray(levels, dtype=np.float64)
    lower = ordered[np.floor(position).astype(np.int64)]
    upper = ordered[np.ceil(position).astype(np.int64)]
    weight = position - np.floor(position)
    with np.errstate(invalid="ignore"):
        step = np.where((weight > 0) & (upper != lower), weight * (upper - lower), 0.0)
    return [float(value) for value in lower + step]


def _budget_names(
    d: int, budgets: Sequence[int], fixed: Sequence[SecondaryBudget]
) -> dict[int, str]:
    """Evaluation count -> what names it: each fixed budget ("10d"), "full" (the setting's
    largest method budget) and "cap" (a smaller method budget)."""
    full = max(budgets)
    names: dict[int, list[str]] = {}
    for rule in fixed:
        count = rule.multiple * d if rule.per_d else rule.multiple
        if count <= full:
            names.setdefault(count, []).append(rule.label)
    for budget in sorted(set(budgets)):
        names.setdefault(budget, []).append("full" if budget == full else "cap")
    return {count: ", ".join(labels) for count, labels in sorted(names.items())}


def fixed_budget_table(
    traces: pd.DataFrame, fixed_budgets: Sequence[str | int] = DEFAULT_FIXED_BUDGETS
) -> pd.DataFrame:
    """Per setting, budget and method: the best-so-far at that budget over seeds.

    The budgets of a setting are the pre-registered ``fixed_budgets`` (``"10d"`` = 10 x d
    evaluations, or a number) up to the setting's largest method budget, and every method
    budget of the setting (the full budget and each cap). A method appears at a budget only
    when its own budget reaches it.

    Args:
        traces: validated traces.
        fixed_budgets: evaluation counts, ``"Nd"`` or integers.

    Returns:
        The ``fixed_budget`` table: the :data:`SETTING_KEYS`, ``budget``, ``budget_names``
        (what names that count: "10d", "full", "cap"), ``method``, ``method_budget``,
        ``runs``, ``failed_runs`` and ``best_median``, ``best_q25``, ``best_q75`` of the
        runs' best-so-far at ``budget`` (a failed run counts as +inf), sorted by setting,
        budget and method.
    """
    fixed = [SecondaryBudget.parse(budget) for budget in fixed_budgets]
    cell_budgets = _cell_budgets(traces)
    rows: list[dict[str, object]] = []
    for setting, budgets in cell_budgets.groupby(list(SETTING_KEYS), sort=True):
        d = cast(tuple[str, int, int, str], setting)[1]
        names = _budget_names(int(d), budgets["budget"].tolist(), fixed)
        runs = traces
        for key, value in zip(SETTING_KEYS, setting, strict=True):
            runs = runs[runs[key] == value]
        values = best_at(runs, list(names))
        for (at, method), own in values.groupby(["at", "method"], sort=True):
            count = int(cast(int, at))
            median, q25, q75 = _quantiles(own["value"].to_numpy(), (0.5, 0.25, 0.75))
            rows.append(
                {
                    **dict(zip(SETTING_KEYS, setting, strict=True)),
                    "budget": count,
                    "budget_names": names[count],
                    "method": method,
                    "method_budget": int(own["budget"].max()),
                    "runs": len(own),
                    "failed_runs": int(own["failed"].sum()),
                    "best_median": median,
                    "best_q25": q25,
                    "best_q75": q75,
                }
            )
    counts = ("d", "K", "budget", "method_budget", "runs", "failed_runs")
    return pd.DataFrame(rows).astype(dict.fromkeys(counts, "int64"))


def rank_table(traces: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per setting and budget: each method's mean rank over seeds, the winner, and whether it
    is significantly better than the runner-up.

    Methods are ranked at each budget B of a setting (each distinct method budget: the cap
    and the full budget), among the methods whose budget reaches B, on their best-so-far
    after B evaluations (:func:`best_at`; a failed run is +inf). At every seed where each of
    them ran, the lowest value gets rank 1 (ties share the mean of their ranks); a method's
    ``mean_rank`` is over those seeds. The winner has the lowest mean rank (ties: the lower
    median value, then the name), the runner-up the next. They are compared by the paired
    two-sided Wilcoxon signed-rank test (:func:`casbo_bench.analysis.stats.
    compare_to_reference`), Holm-adjusted over every (setting, budget) of the table;
    ``significant`` when the adjusted p is below ``alpha`` and the winner is the lower
    (:func:`casbo_bench.analysis.stats.verdict` "better"). The pair is chosen from the same
    data, so the mark describes the table; the claims ledger holds the registered tests.

    Args:
        traces: validated traces.
        alpha: the family-wise error rate of the marks.

    Returns:
        The ``ranks`` table: the :data:`SETTING_KEYS`, ``budget``, ``n_methods`` (compared
        there), ``left_out`` (the methods whose budget is smaller, comma-separated, or
        "none"), ``method``, ``n_seeds``, ``mean_rank``, ``place`` (1 + the methods with a
        lower mean rank), ``winner``, ``runner_up``, ``p_value``, ``p_holm``, ``alpha`` and
        ``significant``; sorted by setting, budget and place.
    """
    budgets = _cell_budgets(traces)
    values = best_at(traces, budgets["budget"].unique().tolist())
    groups: list[pd.DataFrame] = []
    tests: list[tuple[float, float, float]] = []
    for setting, cells in budgets.groupby(list(SETTING_KEYS), sort=True):
        mine = values
        for key, value in zip(SETTING_KEYS, setting, strict=True):
            mine = mine[mine[key] == value]
        for at in sorted(cells["budget"].unique()):
            compared = sorted(cells.loc[cells["budget"] >= at, "method"])
            if len(compared) < 2:
                continue
            left_out = sorted(cells.loc[cells["budget"] < at, "method"])
            wide = (
                mine[mine["at"] == at]
                .pivot(index="seed", columns="method", values="value")
                .reindex(columns=compared)
                .dropna()
            )
            if wide.empty:
                continue
            table = wide.to_numpy(dtype=np.float64)
            mean_rank = rankdata(table, axis=1, method="average").mean(axis=0)
            medians = np.median(table, axis=0)
            order = sorted(range(len(compared)), key=lambda j: (mean_rank[j], medians[j], j))
            winner, runner_up = compared[order[0]], compared[order[1]]
            seeds = wide.index.to_numpy()
            comparison = compare_to_reference(wide[winner], seeds, wide[runner_up], seeds)
            tests.append(
                (comparison.p_value, comparison.median_difference, comparison.win_fraction)
            )
            groups.append(
                pd.DataFrame(
                    {
                        **{key: value for key, value in zip(SETTING_KEYS, setting, strict=True)},
                        "budget": int(at),
                        "n_methods": len(compared),
                        "left_out": ", ".join(left_out) or NONE_LEFT_OUT,
                        "method": compared,
                        "n_seeds": len(wide),
                        "mean_rank": mean_rank,
                        "place": [1 + int((mean_rank < rank).sum()) for rank in mean_rank],
                        "winner": winner,
                        "runner_up": runner_up,
                        "p_value": comparison.p_value,
                    }
                )
            )
    columns = {
        "problem": "str",
        "d": "int64",
        "K": "int64",
        "scoring": "str",
        "budget": "int64",
        "n_methods": "int64",
        "left_out": "str",
        "method": "str",
        "n_seeds": "int64",
        "mean_rank": "float64",
        "place": "int64",
        "winner": "str",
        "runner_up": "str",
        "p_value": "float64",
        "p_holm": "float64",
        "alpha": "float64",
        "significant": "bool",
    }
    if not groups:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})
    adjusted = holm_adjust([p for p, _, _ in tests])
    marks = [
        (p_holm, verdict(p_holm, difference, wins, alpha) == "better")
        for p_holm, (_, difference, wins) in zip(adjusted, tests, strict=True)
    ]
    for frame, (p_holm, significant) in zip(groups, marks, strict=True):
        frame["p_holm"] = p_holm
        frame["alpha"] = float(alpha)
        frame["significant"] = significant
    table = pd.concat(groups, ignore_index=True).astype(columns)
    sort_keys = [*SETTING_KEYS, "budget", "place", "method"]
    return table.sort_values(sort_keys, ignore_index=True)[list(columns)]


def ecdf_grid(budgets: Sequence[int], points: int = ECDF_GRID_POINTS) -> IntArray:
    """The evaluation counts of a runtime ECDF: ``points`` log-spaced from 1 to the largest
    of ``budgets``, and every budget (so each method's curve ends exactly at its budget)."""
    largest = int(max(budgets))
    spaced = np.geomspace(1, largest, points).round().astype(np.int64)
    return np.unique(np.r_[spaced, np.asarray(budgets, dtype=np.int64)])


def _strata_bootstrap(
    per_run: FloatArray,
    strata: IntArray,
    rng: np.random.Generator,
    confidence: float,
    n_resamples: int,
) -> tuple[FloatArray, FloatArray]:
    """Percentile band of the column means of ``per_run`` (``n_runs x m``), the runs
    resampled with replacement within each stratum (a setting), so every resample keeps the
    group's mix of settings."""
    total = np.zeros((n_resamples, per_run.shape[1]))
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        draws = members[rng.integers(0, members.size, size=(n_resamples, members.size))]
        total += per_run[draws].sum(axis=1)
    means = total / per_run.shape[0]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return low, high


def runtime_ecdf(
    traces: pd.DataFrame,
    targets: TargetRule = DEFAULT_RULE,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> pd.DataFrame:
    """COCO's runtime ECDF of each method over the group's settings and targets.

    For a method with runs r (every setting and seed of the group) and the targets t of each
    run's setting (``targets``; :func:`casbo_bench.analysis.ert.setting_targets`),

        ECDF(e) = #{(r, t): r reached t within its first e evaluations} / #{(r, t)}

    (:func:`casbo_bench.analysis.ert.running_times`: a failed run counts the targets it
    reached before it failed, and no other), at the evaluation counts of :func:`ecdf_grid`
    up to the method's largest budget. The band is the percentile bootstrap of the ECDF over
    runs, resampled within each setting, from a generator derived from ``seed`` and the
    method's name (adding a method changes no other row).

    Returns:
        The ``ecdf`` table: ``method``, ``target_rule``, ``evaluations``, ``method_budget``,
        ``runs``, ``pairs`` (runs x targets), ``fraction``, ``ci_low``, ``ci_high`` and
        ``confidence``; sorted by method and evaluations.
    """
    times = running_times(traces, targets)
    hit = times["evaluations"].where(times["reached"], np.inf).to_numpy(dtype=np.float64)
    times = times.assign(hit=hit)
    grid = ecdf_grid(times["budget"].unique().tolist())
    rows: list[pd.DataFrame] = []
    for method, own in times.groupby("method", sort=True):
        runs = own.pivot(index=list(RUN_KEYS), columns="level", values="hit")
        budget = int(own["budget"].max())
        points = grid[grid <= budget]
        first_hits = runs.to_numpy(dtype=np.float64)
        # per run, the share of its targets reached by each grid point: n_runs x m
        per_run = (first_hits[:, :, None] <= points[None, None, :]).mean(axis=1)
        settings = runs.index.to_frame(index=False)[list(SETTING_KEYS)]
        strata: IntArray = np.asarray(
            settings.groupby(list(SETTING_KEYS), sort=True).ngroup(), dtype=np.int64
        )
        low, high = _strata_bootstrap(
            per_run, strata, derive_rng("ecdf", seed, method), confidence, n_resamples
        )
        rows.append(
            pd.DataFrame(
                {
                    "method": method,
                    "target_rule": targets.kind,
                    "evaluations": points,
                    "method_budget": budget,
                    "runs": first_hits.shape[0],
                    "pairs": first_hits.size,
                    "fraction": per_run.mean(axis=0),
                    "ci_low": low,
                    "ci_high": high,
                    "confidence": float(confidence),
                }
            )
        )
    counts = ("evaluations", "method_budget", "runs", "pairs")
    return pd.concat(rows, ignore_index=True).astype(dict.fromkeys(counts, "int64"))
