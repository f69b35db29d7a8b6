"""The claims ledger: which claims hold, by a two-sided rule fixed in config beforehand.

A reproduction suite exists to say which claims hold, and which fail. :func:`build_ledger`
judges every claim record of a :class:`~casbo_bench.registration.ClaimsSpec` (the config's
``claims`` block, resolved by the workflow) from validated results only. A record is one
claim (``id``) in one scope (``paper``, ``matched`` or ``ablation``); each is its own Holm
family and gets its own overall verdict. Nothing here knows a claim or a method by name:
the records say what is compared.

Comparison cells (``kind: comparison``). A cell is one benchmark group, problem, d, K and
scoring, one comparison's method and one of its baselines, where both have runs. Both are
compared at the same number of evaluations E, the smaller of their budgets (a capped
baseline is compared at its cap, and the row's note says so), on the best-so-far loss per
repetition seed, paired by seed (the same seed is the same instance). With the differences
``delta_s = loss_method(s) - loss_baseline(s)``:

- the test is one two-sided Wilcoxon signed-rank test of ``delta`` (p = 1 when every
  ``delta_s`` is 0), Holm-adjusted over the tested cells of the record;
- the effect is the matched-pairs rank-biserial correlation of ``-delta``,
  ``r = (W+ - W-) / (W+ + W-)`` (W+: rank sum of the seeds where the method is lower;
  r = 1: lower on every seed, r = -1: higher on every seed).

A cell is *inconclusive* when a run is missing (a seed that one side ran has no paired
complete run of the other reaching E evaluations; a failed run, trace ``status`` failed,
counts as missing) or fewer than ``min_seeds`` seeds are paired (with n
seeds the exact two-sided test cannot go below 2/2^n); *reproduced* when
``p_holm < alpha`` and ``r >= min_effect`` (the method better); *contradicted* when
``p_holm < alpha`` and ``r <= -min_effect`` (the baseline better); *not-significant*
otherwise.

Claim records. Over all n cells of a record, inconclusive ones included, with R reproduced,
C contradicted, N not-significant and ``m = ceil(min_fraction n)``
(:func:`claim_verdict`):

- *reproduced* iff R >= m and C = 0;
- *contradicted* iff C >= m and R = 0;
- *inconclusive* iff R + C + N < m: too few cells are decided for either verdict to be
  reached (also with no cell at all, e.g. its benchmark groups were not run);
- *mixed* otherwise (the reason gives the four counts).

Budgets. The full budget E is primary and alone decides. Each secondary budget of the rule
(``"10d"``: 10 x d evaluations, or a plain number; never more than E) is tested again, as
its own Holm family, with its own cell and claim verdicts in its own columns
(``verdict_10d``, ``p_holm_10d``, ``effect_10d``, ...); it never changes the primary verdict.

Stand-ins. A method with ``on_plain: other`` in config is not run where K = 1; there the
other's runs stand in for it (CMA-ES over all K x d noises is plain CMA-ES at K = 1), and the
cell names both (``cmaes-joint (cmaes at K = 1)``).

The rate claim (``kind: rate``) is read from the rate check's verdicts
(:mod:`casbo_bench.analysis.rates`): one cell per convex problem (role ``claim``) of the
record's method. A cell with fewer than ``rate_min_seeds`` seeds is inconclusive; otherwise
pass is reproduced, fail contradicted, and "no positive evidence at this horizon"
not-significant (not refuted). Overall: inconclusive if a control misbehaves (``control_ok``
false, e.g. a must-fail control passed: the check is broken); else contradicted if any
cell is (one convex counterexample refutes a rate claimed for every convex function); else
reproduced if every cell is; else inconclusive.

Robustness. Our reconstruction of CASBO makes choices the paper may make differently. Every
comparison whose method is the reference (CASBO) is judged again with each configured
variant in its place, on the cells where the variant ran; CASBO's verdict on those same
cells, derived again as its own family, is the row's ``reference_verdict``, and the row is
*flipped* when the two differ. The rate method's variants (rate-check methods with
``variant_of``) are judged the same way from their own verdicts.

Pre-registration. The ledger judges only traces run under its own rule:
:func:`check_registration` refuses any trace whose provenance carries another
``claims_rule_hash`` (:func:`casbo_bench.registration.claims_rule_hash`), or none.

>>> spec = read_spec("results/claims/claims_spec.json")  # doctest: +SKIP
>>> ledger = build_ledger(spec, {"plain": traces}, rate_verdicts=verdicts)  # doctest: +SKIP
>>> write_ledger(ledger, "results/claims", spec)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from casbo_bench.analysis.rates import read_typed_csv
from casbo_bench.analysis.stats import holm_adjust, min_attainable_wilcoxon, paired_differences
from casbo_bench.documents import html_document, markdown_table
from casbo_bench.files import write_all_or_nothing
from casbo_bench.registration import (
    SCOPES,
    ClaimRecord,
    ClaimsError,
    ClaimsRule,
    ClaimsSpec,
    Comparison,
    read_spec,
)
from casbo_bench.schemas.claims import (
    CELL_IDENTITY,
    CONTRADICTED,
    INCONCLUSIVE,
    MIXED,
    NOT_SIGNIFICANT,
    RATE_FAIL,
    RATE_NO_EVIDENCE,
    RATE_PASS,
    REPRODUCED,
    claim_columns,
    secondary_labels,
    validate_claims,
)
from casbo_bench.schemas.trace import SETTING_KEYS, complete_runs

__all__ = [
    "CONTRADICTED",
    "INCONCLUSIVE",
    "MIXED",
    "NOT_SIGNIFICANT",
    "REPRODUCED",
    "ClaimsError",
    "ClaimsRule",
    "ClaimsSpec",
    "build_ledger",
    "check_registration",
    "claim_verdict",
    "ledger_markdown",
    "rank_biserial",
    "read_ledger",
    "read_spec",
    "write_ledger",
]

RANK_TEST = "two-sided paired Wilcoxon signed-rank"
RATE_TEST = "rate check (docs/method.md section 6)"
PROVENANCE_KEY = "claims_rule_hash"
"""The provenance entry of a trace that names the rule it was run under."""

RATE_CELL_VERDICTS: dict[str, str] = {
    RATE_PASS: REPRODUCED,
    RATE_NO_EVIDENCE: NOT_SIGNIFICANT,
    RATE_FAIL: CONTRADICTED,
}
"""A rate-check verdict (with enough seeds) -> the ledger's cell verdict."""


def check_registration(provenance: Mapping[str, Mapping[str, Any]], rule_hash: str) -> None:
    """Refuse every trace not run under the rule hashed ``rule_hash``.

    Args:
        provenance: trace file -> its provenance (:func:`casbo_bench.traces.read_provenance`).
        rule_hash: the ledger's registration hash (:attr:`ClaimsSpec.registration_hash`).

    Raises:
        ClaimsError: a trace carries another hash, or none; the message names the first.
    """
    for path, record in provenance.items():
        found = record.get(PROVENANCE_KEY)
        if found != rule_hash:
            under = f"under claims rule {found}" if found else "without a claims rule hash"
            raise ClaimsError(
                f"trace {path} was run {under}, not this ledger's rule {rule_hash}; rerun it "
                f"under this rule"
            )


def rank_biserial(differences: ArrayLike) -> float:
    """Matched-pairs rank-biserial correlation of ``differences`` (positive: favourable).

    ``r = (W+ - W-) / (W+ + W-)`` with W+ and W- the rank sums of ``|difference|`` over the
    positive and negative non-zero differences (ties get average ranks); 0 when every
    difference is 0.

    >>> rank_biserial([1.0, 2.0, 3.0]), rank_biserial([1.0, -2.0])
    (1.0, -0.3333333333333333)
    """
    values = np.asarray(differences, dtype=np.float64)
    values = values[values != 0.0]
    if values.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(values))
    return float((ranks[values > 0].sum() - ranks[values < 0].sum()) / ranks.sum())


def claim_verdict(verdicts: Sequence[str], rule: ClaimsRule) -> tuple[str, str]:
    """A claim record's verdict and reason from all its cells' verdicts (module docstring).

    >>> claim_verdict(["reproduced", "reproduced", "inconclusive"], ClaimsRule())[0]
    'reproduced'
    >>> claim_verdict(["reproduced", "inconclusive", "inconclusive"], ClaimsRule())[0]
    'inconclusive'
    """
    total = len(verdicts)
    if total == 0:
        return INCONCLUSIVE, "no cell of this claim has runs of both sides in this config"
    count = Counter(verdicts)
    reproduced, contradicted = count[REPRODUCED], count[CONTRADICTED]
    decided = reproduced + contradicted + count[NOT_SIGNIFICANT]
    needed = rule.cells_needed(total)
    counts = (
        f"{reproduced} reproduced, {contradicted} contradicted, {count[NOT_SIGNIFICANT]} "
        f"not-significant, {count[INCONCLUSIVE]} inconclusive of {total} cells"
    )
    if reproduced >= needed and contradicted == 0:
        return REPRODUCED, f"{counts} (needs >= {needed} reproduced and none contradicted)"
    if contradicted >= needed and reproduced == 0:
        return CONTRADICTED, f"{counts} (needs >= {needed} contradicted and none reproduced)"
    if decided < needed:
        return INCONCLUSIVE, f"{counts}: fewer than {needed} decided, so no verdict is reachable"
    return (
        MIXED,
        f"{counts}: neither >= {needed} reproduced with none contradicted, nor the reverse",
    )


@dataclass
class _Test:
    """One paired test of a cell at one evaluation count."""

    evaluations: int
    n_seeds: int = 0
    p_value: float = math.nan
    effect: float = math.nan
    median_difference: float = math.nan
    untestable: str = ""
    p_holm: float = math.nan
    verdict: str = INCONCLUSIVE
    reason: str = ""


@dataclass
class _Cell:
    """A comparison cell: both sides' runs in one setting, and its test at each budget."""

    group: str
    setting: tuple[str, int, int, str]
    method: str
    baseline: str
    own: pd.DataFrame
    other: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    tests: dict[str, _Test] = field(default_factory=dict)
    _curves: dict[tuple[str, str], _SeedCurves] = field(default_factory=dict, repr=False)

    def curves(self, side: str, unit: str) -> _SeedCurves:
        """The step curves of side ``"own"`` or ``"other"`` in ``unit``, built once."""
        if (side, unit) not in self._curves:
            self._curves[side, unit] = _SeedCurves.of(getattr(self, side), unit)
        return self._curves[side, unit]


CellKey = tuple[str, str, int, int, str]
"""A comparison cell's (group, problem, d, K, scoring)."""


SettingRuns = list[tuple[tuple[str, int, int, str], dict[str, pd.DataFrame]]]
"""A group's settings (problem, d, K, scoring) in order, each with its runs per method."""


def _by_setting(traces: pd.DataFrame) -> SettingRuns:
    """``traces`` split by setting and then by method (rows in their order)."""
    return [
        (
            cast(tuple[str, int, int, str], setting),
            {str(method): own for method, own in runs.groupby("method", sort=False)},
        )
        for setting, runs in traces.groupby(list(SETTING_KEYS), sort=True)
    ]


def _side(
    runs: Mapping[str, pd.DataFrame], label: str, steps: int, spec: ClaimsSpec
) -> tuple[pd.DataFrame | None, str]:
    """The runs of ``label`` in one setting (``runs``: per method), else its stand-in's at
    K = 1, with the name the ledger gives them; None where neither ran."""
    stand_in = spec.stand_ins.get(label)
    if label not in runs and steps == 1 and stand_in is not None:
        return runs.get(stand_in), f"{label} ({stand_in} at K = 1)"
    return runs.get(label), label


def _cells(
    record: ClaimRecord,
    comparisons: Sequence[Comparison],
    benchmarks: Mapping[str, pd.DataFrame],
    context: _Context,
    only: set[CellKey] | None = None,
) -> list[_Cell]:
    """Every cell of ``comparisons`` on the record's groups where both sides have runs
    (restricted to ``only`` when given)."""
    cells: list[_Cell] = []
    for group in (group for group in record.groups if group in benchmarks):
        for setting, runs in context.settings(group, benchmarks[group]):
            problem, d, steps, scoring = setting
            key = (group, str(problem), int(d), int(steps), str(scoring))
            if only is not None and key not in only:
                continue
            for comparison in (c for c in comparisons if c.covers(int(steps))):
                own, method = _side(runs, comparison.method, int(steps), context.spec)
                for baseline in comparison.baselines:
                    other, shown = _side(runs, baseline, int(steps), context.spec)
                    if own is None or other is None:
                        continue
                    cells.append(_Cell(group, key[1:], method, shown, own, other))
    return cells


def _cost_unit(*sides: pd.DataFrame) -> str:
    """``"calls"`` where every side's traces carry black-box calls (molecule tasks: a
    steering method's completed samples cost more than one call each), else
    ``"evaluation"``; with one call per evaluation the two agree."""
    if all("calls" in side.columns and side["calls"].notna().all() for side in sides):
        return "calls"
    return "evaluation"


def _spent(runs: pd.DataFrame, unit: str, curves: _SeedCurves | None = None) -> int:
    """The cost every complete run of ``runs`` (one side of a cell) reached: the least of
    their totals, read off their step curves ``curves`` (built here when not given)."""
    curves = curves if curves is not None else _SeedCurves.of(runs, unit)
    if unit == "evaluation" or not curves.seeds:
        # No complete run: the budget, at which the test then reports the missing seeds.
        return int(runs["budget"].max())
    return int(min(costs.max() for costs in curves.costs))


@dataclass(frozen=True)
class _SeedCurves:
    """One side's complete runs as step curves: per seed, best-so-far against a cost column
    (``evaluation`` or ``calls``), rows in evaluation order. Built once per side, read at
    every budget of its tests."""

    seeds: tuple[int, ...]
    costs: tuple[NDArray[np.float64], ...]
    best: tuple[NDArray[np.float64], ...]

    @classmethod
    def of(cls, runs: pd.DataFrame, unit: str) -> _SeedCurves:
        # ``runs`` is one side of one cell: its seed names the run.
        complete = complete_runs(runs)
        seed = complete["seed"].to_numpy(dtype=np.int64)
        order = np.lexsort((complete["evaluation"].to_numpy(), seed))  # stable, seed-major
        column = "calls" if unit == "calls" else "evaluation"
        seed = seed[order]
        costs = complete[column].to_numpy(dtype=np.float64)[order]
        best = complete["best_so_far"].to_numpy(dtype=np.float64)[order]
        if seed.size == 0:
            return cls((), (), ())
        starts = np.flatnonzero(np.diff(seed, prepend=seed[0] - 1))
        return cls(
            tuple(int(s) for s in seed[starts]),
            tuple(np.split(costs, starts[1:])),
            tuple(np.split(best, starts[1:])),
        )

    def at(self, evaluations: int) -> pd.Series:
        """Best-so-far per seed at ``evaluations`` (:func:`_values_at`)."""
        seeds, values = [], []
        for seed, costs, best in zip(self.seeds, self.costs, self.best, strict=True):
            within = np.flatnonzero(costs <= evaluations)
            if costs.max() >= evaluations and within.size:
                seeds.append(seed)
                values.append(best[within[-1]])
        return pd.Series(
            np.asarray(values, dtype=np.float64), index=np.asarray(seeds, dtype=np.int64)
        )


def _values_at(runs: pd.DataFrame, evaluations: int, unit: str = "evaluation") -> pd.Series:
    """Best-so-far per seed at ``evaluations`` of the complete runs (failed runs, and runs
    that stopped earlier, are left out: their seeds are missing).

    With ``unit`` ``"evaluation"``: each run's last row with ``evaluation <= evaluations``
    among the runs whose last evaluation reaches ``evaluations``; on a full trace that is the
    row of evaluation ``evaluations`` itself, and a compact trace (:mod:`casbo_bench.publish`,
    only the rows where best-so-far changes and the last) gives the same value. With ``unit``
    ``"calls"``: the last completed sample within that many black-box calls, of the runs that
    spent at least that many (again the same on a compact trace)."""
    return _SeedCurves.of(runs, unit).at(evaluations)


def _paired_test(cell: _Cell, evaluations: int, rule: ClaimsRule) -> _Test:
    """The two-sided paired test of ``cell`` at ``evaluations`` (module docstring)."""
    test = _Test(evaluations)
    unit = _cost_unit(cell.own, cell.other)
    mine, theirs = (cell.curves(side, unit).at(evaluations) for side in ("own", "other"))
    seeds = mine.index.intersection(theirs.index)
    ran = set(cell.own["seed"]) | set(cell.other["seed"])
    test.n_seeds = int(seeds.size)
    missing = sorted(int(seed) for seed in ran - set(seeds))
    if missing:
        test.untestable = (
            f"a run is missing: seed(s) {missing} lack a complete {cell.method} or "
            f"{cell.baseline} run reaching {evaluations} evaluations; rerun them"
        )
        return test
    if test.n_seeds < rule.min_seeds:
        floor = min_attainable_wilcoxon(test.n_seeds)
        test.untestable = (
            f"too few seeds: {test.n_seeds} paired < {rule.min_seeds} (with n seeds the "
            f"two-sided test cannot go below p = 2/2^n = {floor:.3g})"
        )
        return test
    differences = paired_differences(mine.loc[seeds].to_numpy(), theirs.loc[seeds].to_numpy())
    if np.count_nonzero(differences) == 0:
        test.p_value = 1.0
    else:
        test.p_value = float(stats.wilcoxon(differences, alternative="two-sided").pvalue)
    test.effect = rank_biserial(-differences)
    test.median_difference = float(np.median(differences))
    return test


def _cell_verdict(cell: _Cell, test: _Test, rule: ClaimsRule) -> tuple[str, str]:
    """A cell's verdict and reason at one budget, after the Holm adjustment of its family."""
    if test.untestable:
        return INCONCLUSIVE, test.untestable
    summary = (
        f"p = {test.p_value:.3g}, Holm-adjusted {test.p_holm:.3g}, r = {test.effect:.2f}, "
        f"median {cell.method} - {cell.baseline} = {test.median_difference:.3g}"
    )
    significant = test.p_holm < rule.alpha
    if significant and test.effect >= rule.min_effect:
        return REPRODUCED, f"{cell.method} lower: {summary}"
    if significant and test.effect <= -rule.min_effect:
        return CONTRADICTED, f"{cell.baseline} lower: {summary}"
    if significant:
        return NOT_SIGNIFICANT, f"|r| below the minimum effect {rule.min_effect:g}: {summary}"
    leader = (
        cell.baseline
        if test.median_difference > 0
        else cell.method
        if test.median_difference < 0
        else "neither"
    )
    return (
        NOT_SIGNIFICANT,
        f"no significant difference at alpha = {rule.alpha:g} ({leader} lower in median): "
        f"{summary}",
    )


def _judge(cells: Sequence[_Cell], rule: ClaimsRule) -> None:
    """Test every cell at the primary budget ("") and each secondary one, Holm-adjust each
    budget's tests as one family, and give every test its verdict."""
    for cell in cells:
        unit = _cost_unit(cell.own, cell.other)
        budgets = tuple(
            _spent(getattr(cell, side), unit, cell.curves(side, unit)) for side in ("own", "other")
        )
        compared = min(budgets)
        named = "evaluations" if unit == "evaluation" else "black-box calls"
        if budgets[0] != budgets[1]:
            capped = cell.method if budgets[0] < budgets[1] else cell.baseline
            cell.notes.append(f"compared at {compared} {named} ({capped}'s budget)")
        cell.tests[""] = _paired_test(cell, compared, rule)
        for budget in rule.secondary_budgets:
            evaluations = budget.evaluations(cell.setting[1], compared)
            cell.tests[budget.label] = _paired_test(cell, evaluations, rule)
    for label in ["", *(budget.label for budget in rule.secondary_budgets)]:
        tests = [cell.tests[label] for cell in cells]
        tested = [test for test in tests if not test.untestable]
        for test, p_holm in zip(
            tested, holm_adjust([test.p_value for test in tested]), strict=True
        ):
            test.p_holm = float(p_holm)
        for cell, test in zip(cells, tests, strict=True):
            test.verdict, test.reason = _cell_verdict(cell, test, rule)


@dataclass(frozen=True)
class _Context:
    """What every row of one ledger shares: the spec, and each group's runs split by setting
    and method once (every record and variant reads them again)."""

    spec: ClaimsSpec
    _settings: dict[str, tuple[pd.DataFrame, SettingRuns]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def settings(self, group: str, traces: pd.DataFrame) -> SettingRuns:
        """:func:`_by_setting` of ``group``'s ``traces``, split once per frame."""
        cached = self._settings.get(group)
        if cached is None or cached[0] is not traces:
            cached = self._settings[group] = (traces, _by_setting(traces))
        return cached[1]

    @property
    def rule(self) -> ClaimsRule:
        return self.spec.rule

    @property
    def budgets(self) -> dict[str, str]:
        """Budget label -> its columns' suffix: the primary ``""`` -> ``""``, then each
        secondary one (``"10d"`` -> ``"_10d"``)."""
        labels = [budget.label for budget in self.rule.secondary_budgets]
        return {"": "", **{label: f"_{label}" for label in labels}}

    def evidence(self, groups: Sequence[str]) -> str:
        """Where a reader checks a comparison verdict: the cell rows, each group's tables."""
        spec = self.spec
        documents = []
        for group in groups:
            # The molecule report has its own tables and figures (scores, not losses).
            tables, figures = (
                ("molecule_scores.md", "score_*")
                if group == spec.molecule_benchmark
                else ("final_loss.md and significance.md", "convergence_*")
            )
            documents.append(
                f"{spec.results_dir}/tables/{group}/{tables}, {spec.figures_dir}/{group}/{figures}"
            )
        return "; ".join(["claims.csv cell rows", *documents])


def _row(
    record: ClaimRecord, row: str, method: str, variant_of: str, context: _Context
) -> dict[str, object]:
    """A ledger row of ``record`` with every other column at its empty value."""
    values: dict[str, object] = {
        "claim_id": record.claim_id,
        "scope": record.scope,
        "source": record.source,
        "kind": record.kind,
        "claim": record.sentence,
        "row": row,
        "method": method,
        "variant_of": variant_of,
        "baseline": "",
        "group": "",
        "problem": "",
        "d": pd.NA,
        "K": pd.NA,
        "scoring": "",
        "evaluations": pd.NA,
        "n_seeds": pd.NA,
        "test": "",
        "p_value": math.nan,
        "p_holm": math.nan,
        "effect": math.nan,
        "verdict": INCONCLUSIVE,
        "reference_verdict": "",
        "flipped": False,
        "reason": "",
        "note": "",
        "evidence": "",
        "config": context.spec.config,
    }
    # A rate claim has no secondary budget: its secondary verdicts stay empty.
    secondary_verdict = INCONCLUSIVE if record.kind == "comparison" else ""
    secondary = [suffix for label, suffix in context.budgets.items() if label]
    for suffix in secondary:
        values.update(
            {
                f"evaluations{suffix}": pd.NA,
                f"p_value{suffix}": math.nan,
                f"p_holm{suffix}": math.nan,
                f"effect{suffix}": math.nan,
                f"verdict{suffix}": secondary_verdict,
            }
        )
    return values


def _joined(labels: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(labels))


def _family_rows(
    record: ClaimRecord,
    comparisons: Sequence[Comparison],
    benchmarks: Mapping[str, pd.DataFrame],
    variant_of: str,
    context: _Context,
    only: set[CellKey] | None = None,
) -> list[dict[str, object]]:
    """The overall row and the cell rows of one Holm family: ``comparisons`` of ``record``
    (on the cells in ``only`` when given)."""
    rule = context.rule
    cells = _cells(record, comparisons, benchmarks, context, only)
    _judge(cells, rule)
    groups = [group for group in record.groups if group in benchmarks]
    evidence = context.evidence(groups)
    method = _joined([comparison.method for comparison in comparisons])
    rows: list[dict[str, object]] = []
    for cell in cells:
        problem, d, steps, scoring = cell.setting
        row = _row(record, "cell", cell.method, variant_of, context)
        row.update(
            baseline=cell.baseline,
            group=cell.group,
            problem=problem,
            d=d,
            K=steps,
            scoring=scoring,
            n_seeds=cell.tests[""].n_seeds,
            reason=cell.tests[""].reason,
            note="; ".join(cell.notes),
            evidence=evidence,
        )
        for label, suffix in context.budgets.items():
            test = cell.tests[label]
            row.update(
                {
                    f"evaluations{suffix}": test.evaluations,
                    f"p_value{suffix}": test.p_value,
                    f"p_holm{suffix}": test.p_holm,
                    f"effect{suffix}": test.effect,
                    f"verdict{suffix}": test.verdict,
                }
            )
        if not cell.tests[""].untestable:
            row["test"] = RANK_TEST
        rows.append(row)
    overall = _row(record, "overall", method, variant_of, context)
    tested = sum(not cell.tests[""].untestable for cell in cells)
    overall.update(
        baseline=_joined([b for comparison in comparisons for b in comparison.baselines]),
        test=f"{RANK_TEST}, Holm over {tested} tested cell(s)",
        evidence=evidence,
    )
    for label, suffix in context.budgets.items():
        verdict, reason = claim_verdict([cell.tests[label].verdict for cell in cells], rule)
        overall[f"verdict{suffix}"] = verdict
        if not label:
            undecided = [cell.tests[""].untestable for cell in cells if cell.tests[""].untestable]
            example = f"; undecided, e.g.: {undecided[0]}" if undecided else ""
            overall["reason"] = reason + (example if verdict == INCONCLUSIVE else "")
    return [overall, *rows]


def _cells_with_runs(benchmarks: Mapping[str, pd.DataFrame], method: str) -> set[CellKey]:
    """The (group, problem, d, K, scoring) cells in which ``method`` has runs."""
    return {
        (group, str(problem), int(d), int(steps), str(scoring))
        for group, traces in benchmarks.items()
        for problem, d, steps, scoring in traces.loc[traces["method"] == method, list(SETTING_KEYS)]
        .drop_duplicates()
        .itertuples(index=False)
    }


def _row_key(row: Mapping[str, object]) -> tuple[str, ...]:
    """What identifies a row within one claim record and method: overall, or its cell."""
    keys = ("row", "baseline", "group", "problem", "d", "K", "scoring")
    return tuple("" if row[key] is pd.NA else str(row[key]) for key in keys)


def _compare_with(
    rows: list[dict[str, object]], reference: list[dict[str, object]]
) -> list[dict[str, object]]:
    """``rows`` (a variant's) with ``reference_verdict`` and ``flipped`` against the
    reference's rows of the same record, matched by row type and cell."""
    verdicts = {_row_key(row): str(row["verdict"]) for row in reference}
    for row in rows:
        found = verdicts.get(_row_key(row), "")
        row["reference_verdict"] = found
        row["flipped"] = bool(found) and found != row["verdict"]
    return rows


def _comparison_claim(
    record: ClaimRecord, benchmarks: Mapping[str, pd.DataFrame], context: _Context
) -> list[dict[str, object]]:
    """A comparison record's rows: its own family, then each variant of the reference's."""
    spec = context.spec
    if not any(group in benchmarks for group in record.groups):
        row = _row(
            record,
            "overall",
            _joined([comparison.method for comparison in record.comparisons]),
            "",
            context,
        )
        groups = ", ".join(record.groups)
        row.update(
            baseline=_joined([b for c in record.comparisons for b in c.baselines]),
            reason=(
                f"benchmark group(s) {groups} not run in this config, or none of its runs "
                f"counts in claims (molecule tasks marked count_in_claims: false)"
            ),
            evidence=f"no {groups} runs judged in {spec.config}",
        )
        return [row]
    rows = _family_rows(record, record.comparisons, benchmarks, "", context)
    own = [c for c in record.comparisons if c.method == spec.reference]
    for variant in spec.variants if own else ():
        only = _cells_with_runs(benchmarks, variant)
        substituted = [replace(comparison, method=variant) for comparison in own]
        judged = _family_rows(record, substituted, benchmarks, spec.reference, context, only)
        if len(judged) == 1:
            continue  # the variant ran on none of this claim's cells
        same_cells = _family_rows(record, own, benchmarks, "", context, only)
        rows += _compare_with(judged, same_cells)
    return rows


def _rate_rows(
    record: ClaimRecord,
    verdicts: pd.DataFrame,
    method: str,
    variant_of: str,
    context: _Context,
) -> list[dict[str, object]]:
    """The rate claim's rows for one method of the rate check (module docstring)."""
    rule = context.rule
    evidence = (
        f"{context.spec.results_dir}/rate_checks/verdicts.csv, {context.spec.results_dir}/"
        f"tables/rate_checks.md, {context.spec.figures_dir}/rate_checks/"
    )
    own = verdicts[(verdicts["method"] == method) & (verdicts["role"] == "claim")]
    rows: list[dict[str, object]] = []
    for check in own.to_dict("records"):
        seeds = int(check["n_seeds"])
        if seeds < rule.rate_min_seeds:
            verdict = INCONCLUSIVE
            reason = (
                f"too few seeds: {seeds} < {rule.rate_min_seeds} for the seed bootstrap (the "
                f"rate check alone gives {check['verdict']}: {check['reason']})"
            )
        elif check["verdict"] not in RATE_CELL_VERDICTS:
            raise ClaimsError(
                f"rate verdict {check['verdict']!r} of {method} on {check['problem']} is not "
                f"one of {', '.join(RATE_CELL_VERDICTS)}; rerun 'casbo-bench rates'"
            )
        else:
            verdict = RATE_CELL_VERDICTS[check["verdict"]]
            reason = str(check["reason"])
            if verdict == NOT_SIGNIFICANT:
                reason = f"no positive evidence at this horizon; not refuted ({reason})"
        row = _row(record, "cell", method, variant_of, context)
        row.update(
            problem=check["problem"],
            K=int(check["K"]),
            scoring=check["scoring"],
            n_seeds=seeds,
            test=RATE_TEST,
            verdict=verdict,
            reason=reason,
            evidence=evidence,
        )
        rows.append(row)
    overall = _row(record, "overall", method, variant_of, context)
    overall.update(
        test=RATE_TEST,
        evidence=evidence,
        n_seeds=int(own["n_seeds"].min()),
    )
    # control_ok is the rate check's own judgement of its controls (a must-fail control
    # that passed, a frozen-law control off its floor): one place for that rule.
    misbehaving = verdicts[~verdicts["control_ok"].astype(bool)]
    cell_verdicts = [str(row["verdict"]) for row in rows]
    failing = [str(row["problem"]) for row in rows if row["verdict"] == CONTRADICTED]
    if not misbehaving.empty:
        named = ", ".join(
            f"{check.method} on {check.problem} ({check.verdict}, expected {check.expectation})"
            for check in misbehaving.itertuples(index=False)
        )
        overall["reason"] = (
            f"a control misbehaves ({named}): the check is broken, it cannot tell adaptation "
            f"from none"
        )
    elif failing:
        overall.update(
            verdict=CONTRADICTED,
            reason=f"the rate check fails on {', '.join(failing)} ({len(failing)} of "
            f"{len(rows)} convex problems): one convex counterexample refutes a rate claimed "
            f"for every convex function",
        )
    elif all(verdict == REPRODUCED for verdict in cell_verdicts):
        overall.update(
            verdict=REPRODUCED, reason=f"the rate check passes on all {len(rows)} convex problems"
        )
    elif NOT_SIGNIFICANT in cell_verdicts:
        open_problems = [str(r["problem"]) for r in rows if r["verdict"] == NOT_SIGNIFICANT]
        overall["reason"] = (
            f"no positive evidence at this horizon on {', '.join(open_problems)}; not refuted"
        )
    else:
        overall["reason"] = next(str(r["reason"]) for r in rows if r["verdict"] == INCONCLUSIVE)
    return [overall, *rows]


def _rate_claim(
    record: ClaimRecord, verdicts: pd.DataFrame | None, context: _Context
) -> list[dict[str, object]]:
    """A rate record's rows: its method's, then each variant's (re-derived, compared)."""
    if verdicts is None:
        row = _row(record, "overall", record.method, "", context)
        row.update(
            test=RATE_TEST,
            reason="rate check not run in this config",
            evidence=f"no rate check in {context.spec.config}",
        )
        return [row]
    primary = _rate_rows(record, verdicts, record.method, "", context)
    rows = list(primary)
    claims_rows = verdicts[
        (verdicts["role"] == "claim") & (verdicts["variant_of"] == record.method)
    ]
    for variant in dict.fromkeys(claims_rows["method"].astype(str)):
        own = _rate_rows(record, verdicts, variant, record.method, context)
        rows += _compare_with(own, primary)
    return rows


def _check_labels(
    spec: ClaimsSpec, benchmarks: Mapping[str, pd.DataFrame], rate_verdicts: pd.DataFrame | None
) -> None:
    """Every label a judged record names has runs (or a stand-in with runs); every variant
    has runs; every rate record's method has claim rows in the rate verdicts."""
    present = {str(m) for traces in benchmarks.values() for m in traces["method"].unique()}
    for record in spec.records:
        if record.kind == "rate":
            claimed = (
                rate_verdicts is None
                or (
                    (rate_verdicts["method"] == record.method) & (rate_verdicts["role"] == "claim")
                ).any()
            )
            if not claimed:
                raise ClaimsError(
                    f"rate claim {record.title} names {record.method}, which has no claim rows "
                    f"in the rate verdicts; check it as a claim in rate_check.checks"
                )
            continue
        if not any(group in benchmarks for group in record.groups):
            continue
        for label in record.labels:
            if label not in present and spec.stand_ins.get(label) not in present:
                raise ClaimsError(
                    f"claim {record.title} compares {label}, which has no runs in the traces "
                    f"given; run it (config methods) or drop it from the claim"
                )
    absent = [variant for variant in spec.variants if variant not in present]
    if absent:
        raise ClaimsError(
            f"variant(s) {absent} have no runs in the traces given; run them or drop them"
        )


def build_ledger(
    spec: ClaimsSpec,
    benchmarks: Mapping[str, pd.DataFrame],
    rate_verdicts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every claim record's verdict, overall and per cell, for CASBO and each variant of it.

    Args:
        spec: the claims, the rule and what the ledger needs to know about the config
            (:func:`casbo_bench.registration.read_spec`).
        benchmarks: benchmark group name -> its validated traces
            (:func:`casbo_bench.traces.load_traces`), variants' runs included. A record
            none of whose groups is given is inconclusive ("not run in this config, or none
            of its runs counts in claims").
        rate_verdicts: the rate check's verdicts (:func:`casbo_bench.analysis.rates.
            read_verdicts`), or None where it was not run.

    Returns:
        The ledger (columns :func:`casbo_bench.schemas.claims.claim_columns`), validated.

    Raises:
        ClaimsError: a judged record names a method without runs, a variant has no runs, or
            a rate record's method has no claim rows in ``rate_verdicts``.
    """
    _check_labels(spec, benchmarks, rate_verdicts)
    context = _Context(spec)
    rows: list[dict[str, object]] = []
    for record in spec.records:
        if record.kind == "rate":
            rows += _rate_claim(record, rate_verdicts, context)
        else:
            rows += _comparison_claim(record, benchmarks, context)
    rule = spec.rule
    columns = claim_columns([budget.label for budget in rule.secondary_budgets])
    ledger = pd.DataFrame(rows).assign(
        alpha=rule.alpha,
        min_seeds=rule.min_seeds,
        min_effect=rule.min_effect,
        rule_hash=spec.registration_hash,
    )
    return validate_claims(ledger[list(columns)].astype(columns))


def _ledger_table(frame: pd.DataFrame) -> list[str]:
    """A ledger section's pipe table: three significant digits, blanks where nothing applies."""
    return markdown_table(frame, ".3g", missing="")


def _side_by_side(primary: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """One row per claim id: its verdict in each scope it has, secondary ones in brackets."""
    scopes = [scope for scope in SCOPES if scope in set(primary["scope"])]
    table = []
    for claim_id, records in primary.groupby("claim_id", sort=False):
        row: dict[str, object] = {
            "claim_id": claim_id,
            "source": _joined(records["source"].tolist()),
            "claim": records["claim"].iloc[0],
        }
        by_scope = records.set_index("scope")
        for scope in scopes:
            if scope not in by_scope.index:
                row[scope] = ""
                continue
            record = by_scope.loc[scope]
            secondary = [
                f"{label}: {record[f'verdict_{label}']}"
                for label in labels
                if record[f"verdict_{label}"]
            ]
            row[scope] = str(record["verdict"]) + (
                f" ({'; '.join(secondary)})" if secondary else ""
            )
        table.append(row)
    return pd.DataFrame(table, columns=["claim_id", "source", "claim", *scopes])


def ledger_markdown(ledger: pd.DataFrame, spec: ClaimsSpec) -> str:
    """``claims.md``: the rule and the registration hash, the verdicts (scopes side by side,
    then each record with its secondary verdicts), the robustness flips and the cell rows."""
    rule = spec.rule
    config = str(ledger["config"].iloc[0])
    labels = secondary_labels(ledger.columns)
    secondary = [f"verdict_{label}" for label in labels]
    overall = ledger[ledger["row"] == "overall"]
    primary = overall[overall["variant_of"] == ""]
    lines = [
        f"# Claims ledger: {config}",
        "",
        "Which claims of the paper (Lyu, Tan, Ong, Tsang, arXiv 2406.00812) hold in this "
        "run, with verdicts computed from the results by a rule fixed in config before any "
        "run. Each claim is judged per scope: *paper* rows repeat the paper's own comparison "
        "(CASBO against latent-only baselines), *matched* rows compare methods that search "
        "the same noises (docs/method.md section 4b), *ablation* rows are ours. Rows whose "
        "source is *ours* test claims the paper does not make. Every CASBO setting is our "
        "reconstruction (docs/method.md); a claim that fails is reported as failing.",
        "",
        f"Decision rule (registered with the claim records, the variants and the rate "
        f"check's rule under hash `{spec.registration_hash}`, carried by the provenance of "
        f"every trace judged here): {rule.describe()}",
        "",
        "## Verdicts",
        "",
        *_ledger_table(_side_by_side(primary, labels)),
        "",
        "## Verdicts by scope",
        "",
        "The primary verdict (at the full budget) alone decides; "
        + (
            f"{', '.join(secondary)} are the verdicts at the secondary budgets, reported, "
            f"never deciding."
            if secondary
            else "no secondary budget is configured."
        ),
        "",
        *_ledger_table(
            primary[
                [
                    "claim_id",
                    "scope",
                    "source",
                    "method",
                    "baseline",
                    "verdict",
                    *secondary,
                    "reason",
                    "evidence",
                ]
            ]
        ),
        "",
        "## Robustness: the verdicts re-derived with each CASBO variant",
        "",
    ]
    variants = overall[overall["variant_of"] != ""]
    if variants.empty:
        lines.append("No CASBO variants were run in this config, so no verdict was re-derived.")
    else:
        table = variants[
            [
                "claim_id",
                "scope",
                "method",
                "variant_of",
                "verdict",
                "reference_verdict",
                "flipped",
                "reason",
            ]
        ]
        flips = table[table["flipped"]]
        lines += [
            "reference_verdict is the reference's verdict derived again on the cells where the "
            "variant ran (a variant has rows only for the claims with cells where it ran).",
            "",
            *_ledger_table(table),
        ]
        lines += ["", f"Flipped overall verdicts: {len(flips)} of {len(table)}."]
        cell_flips = ledger[(ledger["row"] == "cell") & ledger["flipped"]]
        lines.append(
            f"Flipped cell verdicts: {len(cell_flips)} (rows with flipped = true in claims.csv)."
        )
    cells = ledger[(ledger["row"] == "cell") & (ledger["variant_of"] == "")]
    secondary_cells = [
        f"{key}_{label}" for label in labels for key in ("evaluations", "p_holm", "effect")
    ]
    lines += [
        "",
        "## Cells",
        "",
        *_ledger_table(
            cells[
                [
                    *CELL_IDENTITY,
                    "evaluations",
                    "n_seeds",
                    "p_holm",
                    "effect",
                    "verdict",
                    *secondary_cells,
                    *secondary,
                    "note",
                    "reason",
                ]
            ]
        ),
        "",
    ]
    return "\n".join(lines)


def write_ledger(
    ledger: pd.DataFrame, out_dir: str | os.PathLike[str], spec: ClaimsSpec
) -> list[Path]:
    """Validate ``ledger`` and write ``claims.csv``, ``claims.md`` and ``claims.html`` (the
    Markdown as a page, for the Snakemake report) to ``out_dir``.

    Nothing is written unless the ledger passes its schema and was judged under ``spec``'s
    registration; the files are renamed into place only once all are written.

    Raises:
        ClaimsError: the ledger's rule hash is not ``spec``'s registration hash.
    """
    validate_claims(ledger)
    hashes = set(ledger["rule_hash"])
    if hashes != {spec.registration_hash}:
        raise ClaimsError(
            f"the ledger was judged under registration {sorted(hashes)}, not "
            f"{spec.registration_hash}; build it again under this rule"
        )
    out = Path(out_dir)
    markdown = ledger_markdown(ledger, spec)
    return write_all_or_nothing(
        {
            out / "claims.csv": ledger.to_csv(index=False, lineterminator="\n"),
            out / "claims.md": markdown,
            out / "claims.html": html_document(markdown),
        }
    )


def read_ledger(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``claims.csv`` back and validate it (its secondary budgets from its header).

    Raises:
        FileNotFoundError: no file at ``path``.
        ClaimsValidationError: it fails the ledger schema.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"claims ledger {source} does not exist; run 'casbo-bench claims'")
    header = pd.read_csv(source, nrows=0).columns
    columns = claim_columns(secondary_labels(header))
    return validate_claims(read_typed_csv(source, columns), source=str(source))
