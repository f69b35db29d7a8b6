"""The claims ledger: which of the paper's claims hold, by a rule fixed in config beforehand.

A reproduction suite exists to say which claims hold. :func:`build_ledger` gives every
claim in :data:`CLAIMS` a verdict, *reproduced*, *not reproduced* or *inconclusive* (with
the reason), from validated results only:

- ``rate``: the O(d^2/sqrt(T)) rate, from the rate check's verdicts
  (:mod:`casbo_bench.analysis.rates`): one cell per convex problem (role ``claim``); a
  cell with fewer than ``rate_min_seeds`` seeds is inconclusive. Overall: inconclusive if
  a control that must fail passed (the check cannot tell adaptation from none); otherwise
  not reproduced if any cell fails, inconclusive if any is inconclusive, else reproduced
  (one convex counterexample refutes a rate claimed for every convex function).
- ``beats-cmaes``, ``beats-turbo``: CASBO reaches lower losses than the baseline on the
  numerical problems; ``molecule``: the same against both baselines on the molecule
  benchmark (inconclusive while no molecule benchmark is run).
- ``full-covariance`` (CASBO against CASBO-diag) and ``per-step`` (CASBO against
  CASBO-latent, sequential problems only): ablations the paper does not make, labelled
  *ours*.

Comparison cells. A cell is one benchmark group, problem, d, K and scoring. Both methods
are compared at the same number of evaluations, the smaller of their budgets (a capped
baseline is compared at its cap), on the best-so-far loss per repetition seed, paired by
seed (the same seed is the same instance): a one-sided Wilcoxon signed-rank test of
``method < baseline``, Holm-adjusted over the tested cells of the claim (the family), with
the matched-pairs rank-biserial correlation ``r = (W+ - W-) / (W+ + W-)`` as the effect
size (W+: rank sum of the seeds where the method is lower; r = 1: lower on every seed).
A cell is *inconclusive* with fewer than ``min_seeds`` paired seeds (with n seeds the
exact one-sided test cannot go below 1/2^n), *reproduced* when the adjusted p is below
``alpha`` and ``r >= min_effect``, and *not reproduced* otherwise.

Overall, over the claim's cells: *reproduced* when at least ``min_fraction`` of them are,
*not reproduced* when more than ``1 - min_fraction`` of them are not (the inconclusive ones
could not change that), *inconclusive* otherwise.

Robustness. Our reconstruction of CASBO makes choices the paper may make differently (mean
rule, score normalization, beta_0, population size, the positive-definiteness floor). Every
verdict is derived again with each configured variant of CASBO in its place, on the cells
where the variant ran; CASBO's verdict on those same cells is its ``reference_verdict``,
and the variant's row is *flipped* when the two differ.

>>> rule = ClaimsRule(alpha=0.05, min_seeds=10, min_effect=0.3, min_fraction=0.5, rate_min_seeds=5)
>>> ledger = build_ledger({"plain": traces}, rule, "default")  # doctest: +SKIP
>>> write_ledger(ledger, "results/default", rule)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
from scipy import stats

from casbo_bench.analysis.io import SETTING_KEYS
from casbo_bench.analysis.rates import read_typed_csv
from casbo_bench.analysis.stats import holm_adjust
from casbo_bench.analysis.tables import write_documents
from casbo_bench.schemas.claims import CLAIM_COLUMNS, CLAIM_SOURCES, validate_claims

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"

RANK_TEST = "one-sided paired Wilcoxon signed-rank (method < baseline)"
RATE_TEST = "rate check (docs/method.md section 6)"


class ClaimsError(ValueError):
    """The ledger cannot be built from what was given; the message says what to fix."""


@dataclass(frozen=True)
class ClaimsRule:
    """The pre-registered decision rule of the ledger (module docstring).

    Attributes:
        alpha: family-wise error rate of the Holm-adjusted one-sided tests.
        min_seeds: fewest paired seeds for a comparison cell to be tested.
        min_effect: the smallest rank-biserial correlation that counts as an advantage.
        min_fraction: the share of a claim's cells that must be reproduced.
        rate_min_seeds: fewest seeds for a rate-check cell to count.
    """

    alpha: float
    min_seeds: int
    min_effect: float
    min_fraction: float
    rate_min_seeds: int

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ClaimsError(f"alpha must lie strictly between 0 and 1; got {self.alpha}")
        if self.min_seeds < 2 or self.rate_min_seeds < 2:
            raise ClaimsError(
                f"min_seeds and rate_min_seeds must be >= 2; got {self.min_seeds} and "
                f"{self.rate_min_seeds}"
            )
        if not 0.0 <= self.min_effect <= 1.0:
            raise ClaimsError(f"min_effect must lie in [0, 1]; got {self.min_effect}")
        if not 0.0 < self.min_fraction <= 1.0:
            raise ClaimsError(f"min_fraction must lie in (0, 1]; got {self.min_fraction}")

    def describe(self) -> str:
        """The rule in one paragraph, for the ledger's header."""
        return (
            f"Comparison cells: {RANK_TEST} on the best-so-far loss per seed at the smaller "
            f"of the two budgets, Holm-adjusted over the tested cells of each claim; "
            f"reproduced iff p_holm < {self.alpha:g} and rank-biserial r >= "
            f"{self.min_effect:g}; inconclusive with fewer than {self.min_seeds} paired "
            f"seeds. Overall: reproduced iff at least {self.min_fraction:.0%} of the cells "
            f"are, not reproduced iff more than {1 - self.min_fraction:.0%} are not, "
            f"inconclusive otherwise. Rate claim: every convex problem's rate check must "
            f"pass, with at least {self.rate_min_seeds} seeds, and the non-adaptive control "
            f"must fail."
        )


@dataclass(frozen=True)
class Claim:
    """One claim of the ledger.

    Attributes:
        claim_id: its key (:data:`casbo_bench.schemas.claims.CLAIM_SOURCES`).
        sentence: the claim in one sentence.
        baselines: the method labels the reference must beat (comparison claims).
        sequential_only: only cells with K > 1 count (per-step against latent-only
            adaptation differs only where there is more than one step).
    """

    claim_id: str
    sentence: str
    baselines: tuple[str, ...] = ()
    sequential_only: bool = False

    @property
    def source(self) -> str:
        """``"paper"`` or ``"ours"``."""
        return CLAIM_SOURCES[self.claim_id]


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "rate",
        "For cumulative convex functions CASBO with beta_t = beta_0/sqrt(t) converges at "
        "O(d^2/sqrt(T)) in average optimality gap, without smoothness or strong convexity.",
    ),
    Claim(
        "beats-cmaes",
        "CASBO reaches better target scores than CMA-ES on the numerical test problems "
        "(plain and sequential, per problem family and dimension, at the configured budgets).",
        baselines=("cmaes",),
    ),
    Claim(
        "beats-turbo",
        "CASBO reaches better target scores than TuRBO on the numerical test problems "
        "(plain and sequential, per problem family and dimension, at the configured budgets).",
        baselines=("turbo",),
    ),
    Claim(
        "molecule",
        "CASBO reaches better target scores than CMA-ES and TuRBO in target-guided 3D-molecule "
        "generation with a pre-trained diffusion model.",
        baselines=("cmaes", "turbo"),
    ),
    Claim(
        "full-covariance",
        "Full covariance adaptation reaches better scores than diagonal adaptation (CASBO "
        "against CASBO-diag).",
        baselines=("casbo-diag",),
    ),
    Claim(
        "per-step",
        "Adapting every step's noise law reaches better scores than adapting the initial latent "
        "only (CASBO against CASBO-latent, sequential problems).",
        baselines=("casbo-latent",),
        sequential_only=True,
    ),
)
"""Every claim of the ledger, in the order written."""


def rank_biserial(differences: Sequence[float]) -> float:
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


@dataclass
class _Cell:
    """A comparison cell under construction."""

    group: str
    setting: tuple[str, int, int, str]
    baseline: str
    evaluations: int | None = None
    n_seeds: int = 0
    p_value: float = math.nan
    effect: float = math.nan
    median_difference: float = math.nan
    note: str = ""
    reason: str = ""


def _values_at(runs: pd.DataFrame, evaluations: int) -> pd.Series:
    """Best-so-far per seed at ``evaluations`` (runs that stopped earlier are left out)."""
    at = runs[runs["evaluation"] == evaluations]
    return pd.Series(
        at["best_so_far"].to_numpy(dtype=np.float64), index=at["seed"].to_numpy(dtype=np.int64)
    ).sort_index()


def _compare(
    cell: _Cell, own: pd.DataFrame, other: pd.DataFrame, method: str, rule: ClaimsRule
) -> None:
    """Fill ``cell`` with the paired test of ``method`` (``own``) against its baseline."""
    if own.empty or other.empty:
        absent = method if own.empty else cell.baseline
        cell.reason = f"no {absent} runs in this cell"
        return
    own_budget, other_budget = int(own["budget"].max()), int(other["budget"].max())
    cell.evaluations = min(own_budget, other_budget)
    if own_budget != other_budget:
        capped = method if own_budget < other_budget else cell.baseline
        cell.note = f"compared at {cell.evaluations} evaluations ({capped}'s budget)"
    mine, theirs = _values_at(own, cell.evaluations), _values_at(other, cell.evaluations)
    seeds = mine.index.intersection(theirs.index)
    cell.n_seeds = int(seeds.size)
    if cell.n_seeds < rule.min_seeds:
        floor = 0.5**cell.n_seeds if cell.n_seeds else 1.0
        cell.reason = (
            f"too few seeds: {cell.n_seeds} paired < {rule.min_seeds} (with n seeds the "
            f"one-sided test cannot go below p = 1/2^n = {floor:.3g})"
        )
        return
    differences = mine.loc[seeds].to_numpy() - theirs.loc[seeds].to_numpy()
    if np.count_nonzero(differences) == 0:
        cell.p_value = 1.0
    else:
        cell.p_value = float(stats.wilcoxon(differences, alternative="less").pvalue)
    cell.effect = rank_biserial(-differences)
    cell.median_difference = float(np.median(differences))


def _cell_verdict(cell: _Cell, p_holm: float, method: str, rule: ClaimsRule) -> tuple[str, str]:
    """The verdict and reason of a cell, after the Holm adjustment of its family."""
    note = f"; {cell.note}" if cell.note else ""
    if cell.reason:
        return INCONCLUSIVE, cell.reason + note
    summary = (
        f"p = {cell.p_value:.3g}, Holm-adjusted {p_holm:.3g}, r = {cell.effect:.2f}, "
        f"median {method} - {cell.baseline} = {cell.median_difference:.3g}{note}"
    )
    if p_holm < rule.alpha and cell.effect >= rule.min_effect:
        return REPRODUCED, f"{method} lower: {summary}"
    if p_holm < rule.alpha:
        return NOT_REPRODUCED, f"advantage below the minimum effect {rule.min_effect:g}: {summary}"
    leader = cell.baseline if cell.median_difference > 0 else method
    return (
        NOT_REPRODUCED,
        f"no significant advantage at alpha = {rule.alpha:g} ({leader} lower in median): {summary}",
    )


def _overall(verdicts: Sequence[str], reasons: Sequence[str], rule: ClaimsRule) -> tuple[str, str]:
    """The overall verdict of a comparison claim from its cells' (module docstring)."""
    total = len(verdicts)
    if total == 0:
        return INCONCLUSIVE, "no cell of this claim was run in this config"
    reproduced = sum(verdict == REPRODUCED for verdict in verdicts)
    refuted = sum(verdict == NOT_REPRODUCED for verdict in verdicts)
    open_cells = total - reproduced - refuted
    counts = (
        f"{reproduced} of {total} cells reproduced, {refuted} not reproduced, "
        f"{open_cells} inconclusive"
    )
    if reproduced >= rule.min_fraction * total:
        return REPRODUCED, f"{counts} (needs >= {rule.min_fraction:.0%} reproduced)"
    if refuted > (1.0 - rule.min_fraction) * total:
        return (
            NOT_REPRODUCED,
            f"{counts} (more than {1 - rule.min_fraction:.0%} not reproduced)",
        )
    first = next(
        reason for verdict, reason in zip(verdicts, reasons, strict=True) if verdict == INCONCLUSIVE
    )
    return INCONCLUSIVE, f"{counts}; undecided, e.g.: {first}"


def _row(claim: Claim, scope: str, method: str, variant_of: str, config: str) -> dict[str, object]:
    """A ledger row with every column at its empty value."""
    return {
        "claim_id": claim.claim_id,
        "claim": claim.sentence,
        "source": claim.source,
        "scope": scope,
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
        "effect_size": math.nan,
        "verdict": INCONCLUSIVE,
        "reference_verdict": "",
        "flipped": False,
        "reason": "",
        "evidence": "",
        "config": config,
    }


@dataclass(frozen=True)
class _Context:
    """What every row of one ledger shares."""

    rule: ClaimsRule
    config: str
    results_dir: str
    figures_dir: str


CellKey = tuple[str, str, int, int, str]
"""A comparison cell's (group, problem, d, K, scoring)."""


def _cells_with_runs(benchmarks: Mapping[str, pd.DataFrame], method: str) -> set[CellKey]:
    """The (group, problem, d, K, scoring) cells in which ``method`` has runs."""
    return {
        (group, str(problem), int(d), int(steps), str(scoring))
        for group, traces in benchmarks.items()
        for problem, d, steps, scoring in traces.loc[traces["method"] == method, list(SETTING_KEYS)]
        .drop_duplicates()
        .itertuples(index=False)
    }


def _comparison_rows(
    claim: Claim,
    benchmarks: Mapping[str, pd.DataFrame],
    method: str,
    variant_of: str,
    context: _Context,
    only: set[CellKey] | None = None,
) -> list[dict[str, object]]:
    """The overall row and the cell rows of a comparison claim for one CASBO method.

    ``only`` restricts the claim to those cells (a variant is judged, and CASBO's verdict
    it is compared with is derived again, on the cells where the variant ran).
    """
    cells: list[_Cell] = []
    for group, traces in benchmarks.items():
        for setting, runs in traces.groupby(list(SETTING_KEYS), sort=True):
            problem, d, steps, scoring = cast(tuple[str, int, int, str], setting)
            if claim.sequential_only and int(steps) == 1:
                continue
            key = (group, str(problem), int(d), int(steps), str(scoring))
            if only is not None and key not in only:
                continue
            own = runs[runs["method"] == method]
            for baseline in claim.baselines:
                cell = _Cell(group, (str(problem), int(d), int(steps), str(scoring)), baseline)
                _compare(cell, own, runs[runs["method"] == baseline], method, context.rule)
                cells.append(cell)
    tested = [i for i, cell in enumerate(cells) if not cell.reason]
    adjusted = np.full(len(cells), math.nan)
    if tested:
        adjusted[tested] = holm_adjust([cells[i].p_value for i in tested])
    test = f"{RANK_TEST}, Holm over {len(tested)} tested cell(s)"
    groups = sorted({cell.group for cell in cells}) or sorted(benchmarks)
    # The molecule report has its own tables and figures (scores, not losses).
    tables, figures = (
        ("molecule_scores.md", "score_*")
        if claim.claim_id == "molecule"
        else ("final_loss.md and significance.md", "convergence_*")
    )
    documents = [
        f"{context.results_dir}/tables/{group}/{tables}, {context.figures_dir}/{group}/{figures}"
        for group in groups
    ]
    evidence = "claims.csv cell rows; " + "; ".join(documents)
    rows: list[dict[str, object]] = []
    verdicts: list[str] = []
    reasons: list[str] = []
    for cell, p_holm in zip(cells, adjusted, strict=True):
        verdict, reason = _cell_verdict(cell, float(p_holm), method, context.rule)
        verdicts.append(verdict)
        reasons.append(reason)
        problem, d, steps, scoring = cell.setting
        row = _row(claim, "cell", method, variant_of, context.config)
        row.update(
            baseline=cell.baseline,
            group=cell.group,
            problem=problem,
            d=d,
            K=steps,
            scoring=scoring,
            evaluations=cell.evaluations if cell.evaluations is not None else pd.NA,
            n_seeds=cell.n_seeds,
            test=RANK_TEST if not cell.reason else "",
            p_value=cell.p_value,
            p_holm=float(p_holm),
            effect_size=cell.effect,
            verdict=verdict,
            reason=reason,
            evidence=evidence,
        )
        rows.append(row)
    overall = _row(claim, "overall", method, variant_of, context.config)
    verdict, reason = _overall(verdicts, reasons, context.rule)
    overall.update(
        baseline=", ".join(claim.baselines),
        test=test,
        verdict=verdict,
        reason=reason,
        evidence=evidence,
    )
    return [overall, *rows]


def _molecule_not_run(
    claim: Claim, method: str, variant_of: str, context: _Context
) -> list[dict[str, object]]:
    row = _row(claim, "overall", method, variant_of, context.config)
    row.update(
        baseline=", ".join(claim.baselines),
        reason="molecule benchmark not run in this config",
        evidence=f"no molecule benchmark in {context.config}",
    )
    return [row]


def _rate_rows(
    claim: Claim,
    verdicts: pd.DataFrame | None,
    method: str | None,
    variant_of: str,
    context: _Context,
) -> list[dict[str, object]]:
    """The rate claim's rows for one method of the rate check (None: the check did not run)."""
    label = method or "casbo"
    evidence = (
        f"{context.results_dir}/rate_checks/verdicts.csv, {context.results_dir}/tables/"
        f"rate_checks.md, {context.figures_dir}/rate_checks/"
    )
    overall = _row(claim, "overall", label, variant_of, context.config)
    overall.update(test=RATE_TEST, evidence=evidence)
    if verdicts is None or method is None:
        overall.update(
            reason="rate check not run in this config",
            evidence=f"no rate check in {context.config}",
        )
        return [overall]
    own = verdicts[(verdicts["method"] == method) & (verdicts["role"] == "claim")]
    rule = context.rule
    rows: list[dict[str, object]] = []
    for verdict_row in own.to_dict("records"):
        row = _row(claim, "cell", method, variant_of, context.config)
        seeds = int(verdict_row["n_seeds"])
        if seeds < rule.rate_min_seeds:
            verdict = INCONCLUSIVE
            reason = (
                f"too few seeds: {seeds} < {rule.rate_min_seeds} for the seed bootstrap (the "
                f"rate check alone gives {verdict_row['verdict']}: {verdict_row['reason']})"
            )
        else:
            verdict = REPRODUCED if verdict_row["verdict"] == "pass" else NOT_REPRODUCED
            reason = str(verdict_row["reason"])
        row.update(
            problem=verdict_row["problem"],
            K=int(verdict_row["K"]),
            scoring=verdict_row["scoring"],
            n_seeds=seeds,
            test=RATE_TEST,
            verdict=verdict,
            reason=reason,
            evidence=evidence,
        )
        rows.append(row)
    broken = verdicts[(verdicts["expectation"] == "must-fail") & (verdicts["verdict"] == "pass")]
    cell_verdicts = [str(row["verdict"]) for row in rows]
    failing = [str(row["problem"]) for row in rows if row["verdict"] == NOT_REPRODUCED]
    if not rows:
        overall.update(reason=f"the rate check has no claim rows for {method}")
    elif not broken.empty:
        named = ", ".join(f"{r.method} on {r.problem}" for r in broken.itertuples(index=False))
        overall.update(
            reason=f"a control that must fail passed ({named}): the check cannot tell "
            f"adaptation from none"
        )
    elif failing:
        overall.update(
            verdict=NOT_REPRODUCED,
            reason=f"the rate check fails on {', '.join(failing)} ({len(failing)} of "
            f"{len(rows)} convex problems)",
        )
    elif INCONCLUSIVE in cell_verdicts:
        overall.update(
            reason=next(str(row["reason"]) for row in rows if row["verdict"] == INCONCLUSIVE)
        )
    else:
        overall.update(
            verdict=REPRODUCED,
            reason=f"the rate check passes on all {len(rows)} convex problems",
        )
    seed_counts = [int(record["n_seeds"]) for record in own.to_dict("records")]
    overall["n_seeds"] = min(seed_counts) if seed_counts else pd.NA
    return [overall, *rows]


def _row_key(row: Mapping[str, object]) -> tuple[str, ...]:
    """What identifies a row within one claim and method: its scope and cell."""
    keys = ("scope", "baseline", "group", "problem", "d", "K", "scoring")
    return tuple("" if row[key] is pd.NA else str(row[key]) for key in keys)


def _compare_with(
    rows: list[dict[str, object]], reference: list[dict[str, object]]
) -> list[dict[str, object]]:
    """``rows`` (a variant's) with ``reference_verdict`` and ``flipped`` against CASBO's
    rows of the same claim, matched by scope and cell."""
    verdicts = {_row_key(row): str(row["verdict"]) for row in reference}
    for row in rows:
        found = verdicts.get(_row_key(row), "")
        row["reference_verdict"] = found
        row["flipped"] = bool(found) and found != row["verdict"]
    return rows


def build_ledger(
    benchmarks: Mapping[str, pd.DataFrame],
    rule: ClaimsRule,
    config: str,
    rate_verdicts: pd.DataFrame | None = None,
    reference: str = "casbo",
    variants: Sequence[str] = (),
    molecule_benchmark: str | None = None,
    results_dir: str | None = None,
    figures_dir: str | None = None,
) -> pd.DataFrame:
    """Every claim's verdict, overall and per cell, for CASBO and each variant of it.

    Args:
        benchmarks: benchmark group name -> its validated traces
            (:func:`casbo_bench.analysis.io.load_traces`), variants' runs included.
        rule: the pre-registered decision rule.
        config: the config the results come from, as written in the ledger (e.g.
            ``"default (config/config.yaml)"``).
        rate_verdicts: the rate check's verdicts (:func:`casbo_bench.analysis.rates.
            read_verdicts`), or None where it was not run. Its rows of role ``claim``
            without ``variant_of`` are the rate claim's; those with ``variant_of`` its
            robustness variants.
        reference: the label of CASBO in the traces.
        variants: labels of CASBO's robustness variants in the traces.
        molecule_benchmark: the group holding the molecule benchmark (None: not run).
        results_dir: where the tables of this config lie (for the evidence column;
            default ``results/<config's first word>``).
        figures_dir: where its figures lie (default ``paper_figures/<config's first word>``).

    Returns:
        The ledger (columns :data:`casbo_bench.schemas.claims.CLAIM_COLUMNS`), validated.

    Raises:
        ClaimsError: the molecule group is not among ``benchmarks``, a variant is the
            reference itself, or a variant has no runs.
    """
    name = config.split()[0] if config.split() else "default"
    context = _Context(
        rule,
        config,
        results_dir or f"results/{name}",
        figures_dir or f"paper_figures/{name}",
    )
    if molecule_benchmark is not None and molecule_benchmark not in benchmarks:
        raise ClaimsError(
            f"the molecule benchmark {molecule_benchmark!r} is not among the benchmark groups "
            f"given ({', '.join(sorted(benchmarks)) or 'none'}); pass its traces"
        )
    if reference in variants or len(set(variants)) != len(variants):
        raise ClaimsError(
            f"variants must be distinct and differ from the reference {reference!r}; got "
            f"{list(variants)}"
        )
    present = {str(m) for traces in benchmarks.values() for m in traces["method"].unique()}
    absent = [variant for variant in variants if variant not in present]
    if absent:
        raise ClaimsError(
            f"variant(s) {absent} have no runs in the traces given; run them or drop them"
        )
    numerical = {
        group: traces for group, traces in benchmarks.items() if group != molecule_benchmark
    }
    molecules = {molecule_benchmark: benchmarks[molecule_benchmark]} if molecule_benchmark else {}

    rate_methods: list[tuple[str | None, str]] = [(None, "")]
    if rate_verdicts is not None:
        claims_rows = rate_verdicts[rate_verdicts["role"] == "claim"]
        primaries = sorted(set(claims_rows.loc[claims_rows["variant_of"] == "", "method"]))
        rate_methods = [(primary, "") for primary in primaries] or [(None, "")]
        rate_methods += [
            (str(row.method), str(row.variant_of))
            for row in claims_rows[claims_rows["variant_of"] != ""]
            .drop_duplicates("method")
            .itertuples(index=False)
        ]

    rows: list[dict[str, object]] = []
    for claim in CLAIMS:
        if claim.claim_id == "rate":
            primary_rows: dict[str | None, list[dict[str, object]]] = {}
            for method, variant_of in rate_methods:
                own = _rate_rows(claim, rate_verdicts, method, variant_of, context)
                if variant_of:
                    own = _compare_with(own, primary_rows.get(variant_of, []))
                else:
                    primary_rows[method] = own
                rows += own
            continue
        if claim.claim_id == "molecule" and not molecules:
            primary = _molecule_not_run(claim, reference, "", context)
            rows += primary
            for variant in variants:
                own = _molecule_not_run(claim, variant, reference, context)
                rows += _compare_with(own, primary)
            continue
        groups = molecules if claim.claim_id == "molecule" else numerical
        rows += _comparison_rows(claim, groups, reference, "", context)
        for variant in variants:
            only = _cells_with_runs(groups, variant)
            own = _comparison_rows(claim, groups, variant, reference, context, only)
            same_cells = _comparison_rows(claim, groups, reference, "", context, only)
            rows += _compare_with(own, same_cells)
    ledger = pd.DataFrame(rows).assign(
        alpha=rule.alpha, min_seeds=rule.min_seeds, min_effect=rule.min_effect
    )
    return validate_claims(ledger[list(CLAIM_COLUMNS)].astype(CLAIM_COLUMNS))


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    def text(value: object) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return ""
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(frame.columns) + " |",
        "|" + "|".join(":---" for _ in frame.columns) + "|",
    ]
    lines += [
        "| " + " | ".join(text(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return lines


def ledger_markdown(ledger: pd.DataFrame, rule_text: str) -> str:
    """``claims.md``: the verdicts, the robustness flips and the per-cell rows."""
    config = str(ledger["config"].iloc[0])
    overall = ledger[ledger["scope"] == "overall"]
    primary = overall[overall["variant_of"] == ""]
    lines = [
        f"# Claims ledger: {config}",
        "",
        "Which claims of the paper (Lyu, Tan, Ong, Tsang, arXiv 2406.00812) hold in this "
        "run, with verdicts computed from the results by a rule fixed in config before any "
        "run. Rows whose source is *ours* test ablations the paper does not make. Every "
        "CASBO setting is our reconstruction (docs/method.md); a claim that fails is "
        "reported as failing.",
        "",
        f"Decision rule: {rule_text}",
        "",
        "## Verdicts",
        "",
        *_markdown_table(
            primary[["claim_id", "source", "claim", "method", "verdict", "reason", "evidence"]]
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
            "reference_verdict is CASBO's verdict derived again on the cells where the variant "
            "ran (a variant run on fewer benchmark groups is judged on those only).",
            "",
            *_markdown_table(table),
        ]
        lines += ["", f"Flipped overall verdicts: {len(flips)} of {len(table)}."]
        cell_flips = ledger[(ledger["scope"] == "cell") & ledger["flipped"]]
        lines.append(
            f"Flipped cell verdicts: {len(cell_flips)} (rows with flipped = true in claims.csv)."
        )
    cells = ledger[(ledger["scope"] == "cell") & (ledger["variant_of"] == "")]
    lines += [
        "",
        "## Cells (CASBO)",
        "",
        *_markdown_table(
            cells[
                [
                    "claim_id",
                    "baseline",
                    "group",
                    "problem",
                    "d",
                    "K",
                    "scoring",
                    "evaluations",
                    "n_seeds",
                    "p_holm",
                    "effect_size",
                    "verdict",
                    "reason",
                ]
            ]
        ),
        "",
    ]
    return "\n".join(lines)


def write_ledger(
    ledger: pd.DataFrame, out_dir: str | os.PathLike[str], rule: ClaimsRule
) -> list[Path]:
    """Validate ``ledger`` and write ``claims.csv`` and ``claims.md`` to ``out_dir``.

    Nothing is written unless the ledger passes its schema; both files are renamed into
    place only once both are written.
    """
    validate_claims(ledger)
    out = Path(out_dir)
    return write_documents(
        {
            out / "claims.csv": ledger.to_csv(index=False, lineterminator="\n"),
            out / "claims.md": ledger_markdown(ledger, rule.describe()),
        }
    )


def read_ledger(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``claims.csv`` back and validate it.

    Raises:
        FileNotFoundError: no file at ``path``.
        ClaimsValidationError: it fails the ledger schema.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"claims ledger {source} does not exist; run 'casbo-bench claims'")
    return validate_claims(read_typed_csv(source, CLAIM_COLUMNS), source=str(source))
