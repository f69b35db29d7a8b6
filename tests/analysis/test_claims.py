"""The claims ledger: two-sided cell and claim verdicts, secondary budgets, stand-ins, the
rate claim, robustness flips, pre-registration, files and the command."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    MIXED,
    NOT_SIGNIFICANT,
    REPRODUCED,
    ClaimsError,
    build_ledger,
    check_registration,
    claim_verdict,
    rank_biserial,
    read_ledger,
    write_ledger,
)
from casbo_bench.cli import main
from casbo_bench.registration import ClaimsRule, ClaimsSpec, read_spec
from casbo_bench.schemas.claims import RATE_FAIL, RATE_NO_EVIDENCE, RATE_PASS
from casbo_bench.schemas.trace import TRACE_COLUMNS, validate_trace
from casbo_bench.traces import write_trace

from .synthetic import synthetic_traces

RULE = ClaimsRule(alpha=0.05, min_seeds=10, min_effect=0.3, min_fraction=0.5, rate_min_seeds=5)


@functools.cache
def _synthetic(seeds: int, budget: int) -> pd.DataFrame:
    return synthetic_traces(
        methods=("casbo", "cmaes", "random"), seeds=tuple(range(seeds)), budget=budget, dims=(2, 5)
    )


def traces_of(names: dict[str, str], seeds: int = 12, budget: int = 40) -> pd.DataFrame:
    """Synthetic traces (tests/analysis/synthetic.py: casbo decays fastest, then cmaes, then
    random) of the methods in ``names``, renamed to its values; renaming keeps them valid."""
    traces = _synthetic(seeds, budget)
    chosen = traces[traces["method"].isin(list(names))]
    renamed = chosen["method"].map(names)
    return chosen.assign(method=renamed, optimizer=renamed).reset_index(drop=True)


def hand_runs(
    method: str,
    finals: Sequence[float],
    *,
    start: Sequence[float] | None = None,
    problem: str = "sphere",
    d: int = 2,
    steps: int = 1,
    budget: int = 20,
) -> pd.DataFrame:
    """Runs of ``method`` (seed s: ``finals[s]``) whose loss falls linearly from ``start[s]``
    (default: the final value) at evaluation 1 to ``finals[s]`` at the budget."""
    frames = []
    evaluation = np.arange(1, budget + 1)
    for seed, final in enumerate(finals):
        first = final if start is None else start[seed]
        loss = final + (first - final) * (budget - evaluation) / (budget - 1)
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "optimizer": method,
                    "problem": problem,
                    "d": d,
                    "K": steps,
                    "scoring": "final",
                    "seed": seed,
                    "budget": budget,
                    "iteration": evaluation - 1,
                    "evaluation": evaluation,
                    "loss": loss,
                    "best_so_far": np.minimum.accumulate(loss),
                    "wall_time": 1e-3 * evaluation,
                    "expected_loss": np.nan,
                    "fresh_sample_loss": np.nan,
                    "safeguard_events": 0,
                    "failed": False,
                    "error": "",
                    "status": "complete",
                }
            ).astype(TRACE_COLUMNS)
        )
    return pd.concat(frames, ignore_index=True)


def joined(*frames: pd.DataFrame) -> pd.DataFrame:
    return validate_trace(pd.concat(frames, ignore_index=True), source="test")


def comparison(
    method: str,
    baselines: Sequence[str],
    claim_id: str = "beats",
    scope: str = "paper",
    groups: Sequence[str] = ("plain",),
    steps: str = "any",
    source: str = "paper",
) -> dict[str, Any]:
    """A comparison record of one comparison, as the config writes it."""
    return {
        "id": claim_id,
        "scope": scope,
        "source": source,
        "sentence": f"{method} reaches lower losses than {', '.join(baselines)}.",
        "groups": list(groups),
        "comparisons": [{"method": method, "baselines": list(baselines), "steps": steps}],
    }


RATE_RECORD = {
    "id": "rate",
    "kind": "rate",
    "scope": "paper",
    "source": "paper",
    "sentence": "The average gap decays like d^2/sqrt(T) on cumulative convex problems.",
    "method": "casbo-decay",
}


def spec_of(
    *records: Mapping[str, Any], rule: Mapping[str, Any] | None = None, **extra: Any
) -> ClaimsSpec:
    return ClaimsSpec.from_mapping(
        {
            "config": "test (synthetic)",
            "reference": "casbo",
            "rule": dict(rule or {}),
            "claims": list(records),
            "molecule_benchmark": "molecules",
            **extra,
        }
    )


def overall(
    ledger: pd.DataFrame, claim_id: str = "beats", scope: str = "paper", variant: str = ""
) -> pd.Series:
    rows = ledger[
        (ledger["claim_id"] == claim_id)
        & (ledger["scope"] == scope)
        & (ledger["row"] == "overall")
        & (ledger["method"] == variant if variant else ledger["variant_of"] == "")
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def cells(
    ledger: pd.DataFrame, claim_id: str = "beats", scope: str = "paper", variant: str = ""
) -> pd.DataFrame:
    return ledger[
        (ledger["claim_id"] == claim_id)
        & (ledger["scope"] == scope)
        & (ledger["row"] == "cell")
        & (ledger["method"] == variant if variant else ledger["variant_of"] == "")
    ]


def test_rank_biserial_correlation() -> None:
    assert rank_biserial([1.0, 2.0, 3.0]) == 1.0
    assert rank_biserial([-1.0, -2.0]) == -1.0
    assert rank_biserial([0.0, 0.0]) == 0.0
    # ranks of |d|: 1 -> 1, -2 -> 2, 3 -> 3: (1 + 3 - 2) / 6
    assert rank_biserial([1.0, -2.0, 3.0]) == pytest.approx(2.0 / 6.0)
    assert rank_biserial([1.0, -1.0]) == 0.0  # tied magnitudes share their rank


# --- the claim verdict from its cells ------------------------------------------------

R, C, N, U = REPRODUCED, CONTRADICTED, NOT_SIGNIFICANT, INCONCLUSIVE  # U: undecided


@pytest.mark.parametrize(
    ("verdicts", "expected", "phrase"),
    [
        ([R, R, N, U], REPRODUCED, "needs >= 2 reproduced and none contradicted"),
        ([C, C, N, U], CONTRADICTED, "needs >= 2 contradicted and none reproduced"),
        ([R, R, R, C], MIXED, "3 reproduced, 1 contradicted"),  # one contradiction vetoes
        ([C, C, C, R], MIXED, "1 reproduced, 3 contradicted"),
        ([R, N, N, N], MIXED, "1 reproduced, 0 contradicted, 3 not-significant"),
        ([R, U, U, U], INCONCLUSIVE, "fewer than 2 decided"),
        ([N, U, U, U], INCONCLUSIVE, "1 not-significant, 3 inconclusive of 4 cells"),
        ([], INCONCLUSIVE, "no cell of this claim"),
    ],
)
def test_claim_verdict_covers_every_branch(verdicts: list[str], expected: str, phrase: str) -> None:
    verdict, reason = claim_verdict(verdicts, RULE)
    assert verdict == expected
    assert phrase in reason


def test_inconclusive_cells_count_in_the_fraction() -> None:
    # 1 of 3 cells reproduced, 2 inconclusive: 100% of the decided cells, but 33% of all.
    assert claim_verdict([R, U, U], RULE)[0] == INCONCLUSIVE
    assert claim_verdict([R, R, U], RULE)[0] == REPRODUCED
    strict = ClaimsRule(min_fraction=0.75)
    assert claim_verdict([R, R, U, U], strict)[0] == INCONCLUSIVE  # 2 decided < 3 needed
    assert claim_verdict([R, R, N, U], strict)[0] == MIXED
    assert ClaimsRule(min_fraction=0.3).cells_needed(10) == 3  # not 4 (0.3 x 10 in binary)


# --- comparison cells -----------------------------------------------------------------


def test_cells_are_reproduced_where_the_method_is_clearly_better() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    ledger = build_ledger(spec_of(comparison("casbo", ["cmaes"])), {"plain": traces})
    row = overall(ledger)
    assert row["verdict"] == REPRODUCED, row["reason"]
    own = cells(ledger)
    assert len(own) == 8  # 2 problems x 2 d x 2 (K, scoring)
    assert (own["verdict"] == REPRODUCED).all()
    assert (own["p_holm"] < 0.05).all() and (own["effect"] >= 0.3).all()
    assert (own["n_seeds"] == 12).all() and (own["evaluations"] == 40).all()
    assert own["reason"].str.startswith("casbo lower").all()
    assert row["test"] == "two-sided paired Wilcoxon signed-rank, Holm over 8 tested cell(s)"


def test_cells_and_claim_are_contradicted_where_the_baseline_is_better() -> None:
    # random is the slowest synthetic method: judged against cmaes it loses every cell.
    traces = traces_of({"random": "casbo-diag", "cmaes": "cmaes"})
    spec = spec_of(comparison("casbo-diag", ["cmaes"], source="ours", scope="ablation"))
    ledger = build_ledger(spec, {"plain": traces})
    row = overall(ledger, scope="ablation")
    assert row["verdict"] == CONTRADICTED, row["reason"]
    own = cells(ledger, scope="ablation")
    assert (own["verdict"] == CONTRADICTED).all()
    assert (own["p_holm"] < 0.05).all() and (own["effect"] <= -0.3).all()
    assert own["reason"].str.startswith("cmaes lower").all()
    assert "8 contradicted" in row["reason"]


def test_a_difference_without_a_consistent_sign_is_not_significant() -> None:
    # The baseline is the method's own losses scaled up on even seeds and down on odd ones.
    finals = 1.0 + 0.1 * np.arange(12)
    scaled = finals * np.where(np.arange(12) % 2 == 0, 1.1, 1.0 / 1.1)
    traces = joined(hand_runs("casbo", finals), hand_runs("cmaes", scaled))
    ledger = build_ledger(spec_of(comparison("casbo", ["cmaes"])), {"plain": traces})
    (cell,) = cells(ledger).itertuples(index=False)
    assert cell.verdict == NOT_SIGNIFICANT
    assert cell.p_holm >= 0.05 and "no significant difference at alpha = 0.05" in cell.reason
    # every decided cell not significant: neither one-sided verdict, so mixed (by the rule)
    assert overall(ledger)["verdict"] == MIXED


def test_a_significant_advantage_below_the_minimum_effect_is_not_significant() -> None:
    # 11 of 12 seeds favour the method, the twelfth slightly the baseline: r = 76 / 78.
    finals = 1.0 + 0.1 * np.arange(12)
    baseline = finals + 0.5 + 0.1 * np.arange(12)
    baseline[0] = finals[0] - 0.01
    traces = joined(hand_runs("casbo", finals), hand_runs("cmaes", baseline))
    spec = spec_of(comparison("casbo", ["cmaes"]), rule={"min_effect": 0.99})
    (cell,) = cells(build_ledger(spec, {"plain": traces})).itertuples(index=False)
    assert cell.p_holm < 0.05 and cell.effect == pytest.approx(76 / 78)
    assert cell.verdict == NOT_SIGNIFICANT
    assert "|r| below the minimum effect 0.99" in cell.reason


def test_too_few_seeds_or_a_missing_run_make_a_cell_inconclusive() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"}, seeds=3)
    ledger = build_ledger(spec_of(comparison("casbo", ["cmaes"])), {"plain": traces})
    row = overall(ledger)
    assert row["verdict"] == INCONCLUSIVE
    own = cells(ledger)
    assert own["p_value"].isna().all() and own["p_holm"].isna().all()
    assert own["reason"].str.startswith("too few seeds: 3 paired < 10").all()
    full = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    dropped = full[~((full["method"] == "cmaes") & (full["seed"] == 4))]
    ledger = build_ledger(spec_of(comparison("casbo", ["cmaes"])), {"plain": dropped})
    own = cells(ledger)
    assert (own["verdict"] == INCONCLUSIVE).all()  # 11 paired seeds would do, but one is lost
    assert own["reason"].str.contains("a run is missing: seed\\(s\\) \\[4\\]").all()


def test_a_failed_run_makes_a_cell_inconclusive_like_a_missing_one() -> None:
    full = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    broken = (full["method"] == "cmaes") & (full["seed"] == 4)
    failed = validate_trace(
        full[~broken | (full["evaluation"] <= 7)].assign(
            status=lambda frame: np.where(
                frame["seed"].eq(4) & frame["method"].eq("cmaes"), "failed", "complete"
            )
        ),
        source="test",
    )
    own = cells(build_ledger(spec_of(comparison("casbo", ["cmaes"])), {"plain": failed}))
    assert (own["verdict"] == INCONCLUSIVE).all()
    assert own["reason"].str.contains("a run is missing: seed\\(s\\) \\[4\\] lack a complete").all()


def test_inconclusive_cells_keep_a_claim_from_being_reproduced() -> None:
    # sphere: 12 seeds, reproduced; ellipsoid and rastrigin: 3 seeds, inconclusive.
    many, few = 1.0 + 0.1 * np.arange(12), 1.0 + 0.1 * np.arange(3)
    traces = joined(
        hand_runs("casbo", many),
        hand_runs("cmaes", many + 5.0),
        *(hand_runs("casbo", few, problem=p) for p in ("ellipsoid", "rastrigin")),
        *(hand_runs("cmaes", few + 5.0, problem=p) for p in ("ellipsoid", "rastrigin")),
    )
    ledger = build_ledger(spec_of(comparison("casbo", ["cmaes"])), {"plain": traces})
    assert cells(ledger)["verdict"].tolist().count(REPRODUCED) == 1
    row = overall(ledger)
    assert row["verdict"] == INCONCLUSIVE
    assert (
        "1 reproduced, 0 contradicted, 0 not-significant, 2 inconclusive of 3 cells"
        in (row["reason"])
    )


def test_a_capped_baseline_is_compared_at_its_own_budget() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "turbo"}, budget=40)
    turbo = traces["method"] == "turbo"
    capped = traces[~turbo | (traces["evaluation"] <= 16)]
    capped = validate_trace(
        capped.assign(budget=np.where(capped["method"] == "turbo", 16, 40)), source="test"
    )
    spec = spec_of(comparison("casbo", ["turbo", "cmaes"]))
    own = cells(build_ledger(spec, {"plain": capped}))
    turbo_cells = own[own["baseline"] == "turbo"]
    assert (turbo_cells["evaluations"] == 16).all()
    assert (turbo_cells["note"] == "compared at 16 evaluations (turbo's budget)").all()
    cmaes_cells = own[own["baseline"] == "cmaes"]
    assert (cmaes_cells["evaluations"] == 40).all() and (cmaes_cells["note"] == "").all()


# --- secondary budgets ---------------------------------------------------------------------


def test_secondary_budgets_have_their_own_columns_and_never_veto() -> None:
    # The method starts far higher and ends lower: better at the budget (20), worse at 2d = 4.
    finals = 1.0 + 0.01 * np.arange(10)
    traces = joined(
        hand_runs("casbo", finals, start=finals + 100.0),
        hand_runs("cmaes", finals + 1.0),
    )
    spec = spec_of(comparison("casbo", ["cmaes"]), rule={"secondary_budgets": ["2d", 50]})
    ledger = build_ledger(spec, {"plain": traces})
    assert {"verdict_2d", "p_holm_2d", "effect_2d", "evaluations_50"} <= set(ledger.columns)
    (cell,) = cells(ledger).itertuples(index=False)
    assert (cell.evaluations, cell.verdict) == (20, REPRODUCED)
    assert (cell.evaluations_2d, cell.verdict_2d, cell.effect_2d) == (4, CONTRADICTED, -1.0)
    assert (cell.evaluations_50, cell.verdict_50) == (20, REPRODUCED)  # clipped to the budget
    row = overall(ledger)
    assert (row["verdict"], row["verdict_2d"]) == (REPRODUCED, CONTRADICTED)


def test_each_secondary_budget_is_its_own_holm_family() -> None:
    finals = 1.0 + 0.01 * np.arange(10)
    traces = joined(
        hand_runs("casbo", finals, start=finals + 100.0),
        hand_runs("cmaes", finals + 1.0),
        hand_runs("casbo", finals, problem="ellipsoid"),
        hand_runs("cmaes", finals + 1.0, problem="ellipsoid", start=finals + 100.0),
    )
    spec = spec_of(comparison("casbo", ["cmaes"]), rule={"secondary_budgets": ["2d"]})
    own = cells(build_ledger(spec, {"plain": traces}))
    # 10 seeds all one way: exact two-sided p = 2/2^10, Holm over the 2 cells of each family
    assert own["p_holm"].tolist() == pytest.approx([4 / 1024] * 2)
    assert own["p_holm_2d"].tolist() == pytest.approx([4 / 1024] * 2)
    assert own["verdict_2d"].tolist() == [REPRODUCED, CONTRADICTED]  # ellipsoid, sphere


# --- claim records as data ---------------------------------------------------------------------


def test_each_scope_of_a_claim_is_its_own_record_with_its_own_family() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "random"})
    spec = spec_of(
        comparison("casbo", ["cmaes"], claim_id="beats-cmaes", scope="paper"),
        comparison("random", ["cmaes"], claim_id="beats-cmaes", scope="matched"),
    )
    ledger = build_ledger(spec, {"plain": traces})
    assert overall(ledger, "beats-cmaes", "paper")["verdict"] == REPRODUCED
    assert overall(ledger, "beats-cmaes", "matched")["verdict"] == CONTRADICTED
    assert set(ledger["scope"]) == {"paper", "matched"}
    assert set(ledger["row"]) == {"overall", "cell"}
    assert len(set(ledger["rule_hash"])) == 1


def test_stand_ins_replace_a_method_not_run_at_k_1() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    joint = (traces["method"] == "cmaes") & (traces["K"] > 1)
    traces = traces.assign(
        method=traces["method"].where(~joint, "cmaes-joint"),
        optimizer=traces["optimizer"].where(~joint, "cmaes-joint"),
    )
    record = comparison("casbo", ["cmaes-joint"], scope="matched")
    ledger = build_ledger(
        spec_of(record, stand_ins={"cmaes-joint": "cmaes"}),
        {"plain": validate_trace(traces, source="test")},
    )
    own = cells(ledger, scope="matched")
    plain, sequential = own[own["K"] == 1], own[own["K"] > 1]
    assert len(plain) == len(sequential) == 4
    assert (plain["baseline"] == "cmaes-joint (cmaes at K = 1)").all()
    assert (sequential["baseline"] == "cmaes-joint").all()
    assert overall(ledger, scope="matched")["baseline"] == "cmaes-joint"
    without = build_ledger(spec_of(record), {"plain": validate_trace(traces, source="test")})
    assert (cells(without, scope="matched")["K"] > 1).all()  # no cell where a side is missing


def test_steps_restrict_a_comparison_to_plain_or_sequential_cells() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    for steps, expected in (("plain", {1}), ("sequential", {3}), ("any", {1, 3})):
        ledger = build_ledger(
            spec_of(comparison("casbo", ["cmaes"], steps=steps)), {"plain": traces}
        )
        assert set(cells(ledger)["K"]) == expected


def test_a_record_whose_groups_were_not_run_is_inconclusive() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    molecule = comparison("casbo", ["cmaes", "turbo"], claim_id="molecule", groups=["molecules"])
    spec = spec_of(comparison("casbo", ["cmaes"]), molecule)
    ledger = build_ledger(spec, {"plain": traces})  # turbo has no runs: not an error here
    row = overall(ledger, "molecule")
    assert row["verdict"] == INCONCLUSIVE
    assert row["reason"].startswith("benchmark group(s) molecules not run in this config")
    assert row["baseline"] == "cmaes, turbo"
    assert cells(ledger, "molecule").empty
    with_molecules = build_ledger(
        spec_of(comparison("casbo", ["cmaes"], claim_id="molecule", groups=["molecules"])),
        {"plain": traces, "molecules": traces_of({"casbo": "casbo", "random": "cmaes"})},
    )
    assert set(cells(with_molecules, "molecule")["group"]) == {"molecules"}
    evidence = overall(with_molecules, "molecule")["evidence"]
    assert "tables/molecules/molecule_scores.md" in evidence and "final_loss" not in evidence


def test_a_compared_method_without_runs_is_an_error() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    with pytest.raises(ClaimsError, match="compares turbo, which has no runs in the traces"):
        build_ledger(spec_of(comparison("casbo", ["turbo"])), {"plain": traces})


# --- the rate claim -----------------------------------------------------------------------


def rate_rows(
    claims: Mapping[str, str],
    seeds: int = 6,
    control: str = RATE_FAIL,
    control_ok: bool = True,
    method: str = "casbo-decay",
    variant_of: str = "",
) -> list[dict[str, object]]:
    """Rate-verdict rows (the columns the ledger reads): problem -> verdict of ``method``,
    and the non-adaptive control on the sphere (unless ``method`` is a variant)."""
    rows: list[dict[str, object]] = [
        {
            "problem": problem,
            "method": method,
            "variant_of": variant_of,
            "role": "claim",
            "expectation": "pass",
            "K": 3,
            "scoring": "cumulative",
            "n_seeds": seeds,
            "verdict": verdict,
            "control_ok": True,
            "reason": f"{verdict} on {problem}",
        }
        for problem, verdict in claims.items()
    ]
    if not variant_of:
        rows.append(
            {
                "problem": "sphere",
                "method": "random",
                "variant_of": "",
                "role": "control",
                "expectation": "must-fail",
                "K": 3,
                "scoring": "cumulative",
                "n_seeds": seeds,
                "verdict": control,
                "control_ok": control_ok,
                "reason": f"{control} on sphere",
            }
        )
    return rows


def rate_ledger(*row_sets: list[dict[str, object]]) -> pd.DataFrame:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    verdicts = pd.DataFrame([row for rows in row_sets for row in rows])
    return build_ledger(spec_of(RATE_RECORD), {"plain": traces}, rate_verdicts=verdicts)


def test_the_rate_claim_is_reproduced_when_every_convex_problem_passes() -> None:
    ledger = rate_ledger(rate_rows({"sphere": RATE_PASS, "ellipsoid": RATE_PASS}))
    row = overall(ledger, "rate")
    assert (row["verdict"], row["method"], row["kind"]) == (REPRODUCED, "casbo-decay", "rate")
    assert (cells(ledger, "rate")["verdict"] == REPRODUCED).all()


def test_one_failing_convex_problem_contradicts_the_rate_claim() -> None:
    ledger = rate_ledger(rate_rows({"sphere": RATE_PASS, "ellipsoid": RATE_FAIL}))
    row = overall(ledger, "rate")
    assert row["verdict"] == CONTRADICTED
    assert "fails on ellipsoid (1 of 2 convex problems)" in row["reason"]
    assert cells(ledger, "rate")["verdict"].tolist() == [REPRODUCED, CONTRADICTED]


def test_no_positive_evidence_is_not_a_refutation() -> None:
    ledger = rate_ledger(rate_rows({"sphere": RATE_PASS, "ellipsoid": RATE_NO_EVIDENCE}))
    row = overall(ledger, "rate")
    assert row["verdict"] == INCONCLUSIVE
    assert row["reason"] == "no positive evidence at this horizon on ellipsoid; not refuted"
    cell = cells(ledger, "rate").iloc[1]
    assert cell["verdict"] == NOT_SIGNIFICANT
    assert cell["reason"].startswith("no positive evidence at this horizon; not refuted")


def test_a_misbehaving_control_makes_the_rate_claim_inconclusive() -> None:
    rows = rate_rows({"sphere": RATE_PASS}, control=RATE_PASS, control_ok=False)
    row = overall(rate_ledger(rows), "rate")
    assert row["verdict"] == INCONCLUSIVE
    assert "random on sphere (pass, expected must-fail)" in row["reason"]
    assert "the check is broken" in row["reason"]


def test_the_rate_claim_is_inconclusive_with_too_few_seeds_or_no_check() -> None:
    ledger = rate_ledger(rate_rows({"sphere": RATE_FAIL}, seeds=3))
    row = overall(ledger, "rate")
    assert row["verdict"] == INCONCLUSIVE
    assert row["reason"].startswith("too few seeds: 3 < 5")
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    absent = overall(build_ledger(spec_of(RATE_RECORD), {"plain": traces}), "rate")
    assert (absent["verdict"], absent["reason"]) == (
        INCONCLUSIVE,
        "rate check not run in this config",
    )
    with pytest.raises(ClaimsError, match="names casbo-decay, which has no claim rows"):
        rate_ledger(rate_rows({"sphere": RATE_PASS}, method="casbo-constant"))


def test_rate_variants_are_rederived_from_their_own_verdicts() -> None:
    ledger = rate_ledger(
        rate_rows({"sphere": RATE_PASS}),
        rate_rows({"sphere": RATE_FAIL}, method="casbo-decay-rank", variant_of="casbo-decay"),
        rate_rows({"sphere": RATE_PASS}, method="casbo-decay-first", variant_of="casbo-decay"),
    )
    flipped = overall(ledger, "rate", variant="casbo-decay-rank")
    assert (flipped["verdict"], flipped["reference_verdict"]) == (CONTRADICTED, REPRODUCED)
    assert flipped["flipped"]
    kept = overall(ledger, "rate", variant="casbo-decay-first")
    assert kept["reference_verdict"] == REPRODUCED and not kept["flipped"]


# --- robustness ------------------------------------------------------------------------------


def test_a_variant_that_changes_a_verdict_is_reported_as_a_flip() -> None:
    # casbo-bad (the slow synthetic method) in casbo's place loses to cmaes.
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "casbo-bad"})
    record = comparison("casbo", ["cmaes"])
    ledger = build_ledger(spec_of(record, variants=["casbo-bad"]), {"plain": traces})
    primary, variant = overall(ledger), overall(ledger, variant="casbo-bad")
    assert (primary["verdict"], variant["verdict"]) == (REPRODUCED, CONTRADICTED)
    assert variant["variant_of"] == "casbo"
    assert variant["flipped"] and not primary["flipped"]
    assert variant["reference_verdict"] == REPRODUCED
    assert cells(ledger, variant="casbo-bad")["flipped"].all()


def test_a_variant_replaces_the_reference_only_on_the_cells_where_it_ran() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "random"})
    variant = traces[(traces["method"] == "casbo") & (traces["problem"] == "sphere")]
    both = pd.concat([traces, variant.assign(method="casbo-rank")], ignore_index=True)
    record = comparison("casbo", ["cmaes"])
    record["comparisons"].append({"method": "random", "baselines": ["cmaes"]})
    ledger = build_ledger(spec_of(record, variants=["casbo-rank"]), {"plain": both})
    own = cells(ledger, variant="casbo-rank")
    # only casbo's comparison is re-derived, on the sphere cells
    assert set(own["problem"]) == {"sphere"} and len(own) == 4
    assert set(own["baseline"]) == {"cmaes"}
    row = overall(ledger, variant="casbo-rank")
    assert row["verdict"] == row["reference_verdict"] == REPRODUCED
    assert "of 4 cells" in row["reason"] and not row["flipped"]
    assert overall(ledger)["verdict"] == MIXED  # casbo reproduced, random contradicted


def test_variants_must_have_runs() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    with pytest.raises(ClaimsError, match="have no runs"):
        build_ledger(
            spec_of(comparison("casbo", ["cmaes"]), variants=["casbo-rank"]), {"plain": traces}
        )


# --- pre-registration ---------------------------------------------------------------------------


def test_traces_run_under_another_rule_or_none_are_refused() -> None:
    check_registration({"a.parquet": {"claims_rule_hash": RULE.hash}}, RULE.hash)
    with pytest.raises(ClaimsError, match=r"trace b\.parquet was run under claims rule 0123"):
        check_registration(
            {
                "a.parquet": {"claims_rule_hash": RULE.hash},
                "b.parquet": {"claims_rule_hash": "0123"},
            },
            RULE.hash,
        )
    with pytest.raises(ClaimsError, match=r"without a claims rule hash.*rerun it under this rule"):
        check_registration({"c.parquet": {"claims_rule_hash": None}}, RULE.hash)
    with pytest.raises(ClaimsError, match=r"c\.parquet was run without"):
        check_registration({"c.parquet": {}}, RULE.hash)


# --- files and the command -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> ClaimsSpec:
    return spec_of(
        comparison("casbo", ["cmaes"], claim_id="beats-cmaes", scope="paper"),
        comparison("casbo", ["cmaes"], claim_id="beats-cmaes", scope="matched", steps="sequential"),
        comparison("casbo", ["cmaes"], claim_id="molecule", groups=["molecules"]),
        RATE_RECORD,
        rule={"secondary_budgets": ["2d"]},
        variants=["casbo-bad"],
    )


@pytest.fixture(scope="module")
def ledger(spec: ClaimsSpec) -> pd.DataFrame:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "casbo-bad"})
    return build_ledger(spec, {"plain": traces})


def test_ledger_files_round_trip(tmp_path: Path, ledger: pd.DataFrame, spec: ClaimsSpec) -> None:
    written = write_ledger(ledger, tmp_path, spec)
    assert [path.name for path in written] == ["claims.csv", "claims.md", "claims.html"]
    back = read_ledger(tmp_path / "claims.csv")
    pd.testing.assert_frame_equal(back, ledger)
    markdown = (tmp_path / "claims.md").read_text()
    assert f"hash `{spec.registration_hash}`" in markdown and spec.rule.describe() in markdown
    assert "| claim_id | source | claim | paper | matched |" in markdown
    assert "reproduced (2d: reproduced)" in markdown
    assert "| verdict | verdict_2d | reason |" in markdown
    assert "## Robustness" in markdown and "Flipped overall verdicts: 2 of 2." in markdown
    assert "benchmark group(s) molecules not run in this config" in markdown
    assert "| p_holm_2d | effect_2d | verdict_2d | note | reason |" in markdown
    page = (tmp_path / "claims.html").read_text()
    rules = [line for line in markdown.splitlines() if line.startswith(("|:-", "|-"))]
    assert page.count("<table>") == len(rules) == 4
    assert "<h2>Robustness: the verdicts re-derived with each CASBO variant</h2>" in page
    assert "<td>reproduced (2d: reproduced)</td>" in page
    assert f"<code>{spec.registration_hash}</code>" in page


def test_a_ledger_is_written_only_under_its_own_rule(
    tmp_path: Path, ledger: pd.DataFrame, spec: ClaimsSpec
) -> None:
    with pytest.raises(ClaimsError, match="build it again under this rule"):
        write_ledger(ledger, tmp_path, replace(spec, rule=ClaimsRule(secondary_budgets=())))
    assert not list(tmp_path.iterdir())


def _write_traces(folder: Path, traces: pd.DataFrame, rule_hash: str | None) -> list[str]:
    files = []
    for method, runs in traces.groupby("method"):
        path = folder / f"{method}.parquet"
        write_trace(runs.reset_index(drop=True), path, {"claims_rule_hash": rule_hash})
        files.append(str(path))
    return files


def _spec_file(folder: Path, records: list[dict[str, Any]], **extra: Any) -> Path:
    path = folder / "claims_spec.json"
    spec = {"config": "test (synthetic)", "reference": "casbo", "rule": {}, "claims": records}
    path.write_text(json.dumps({**spec, **extra}))
    return path


def test_command_writes_the_ledger(tmp_path: Path) -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "casbo-bad"})
    records = [
        comparison("casbo", ["cmaes"], claim_id="beats-cmaes"),
        comparison("casbo", ["turbo"], claim_id="beats-turbo", groups=["molecules"]),
        RATE_RECORD,
    ]
    spec = _spec_file(tmp_path, records, variants=["casbo-bad"])
    registration = read_spec(spec).registration_hash
    files = _write_traces(tmp_path, traces, registration)
    out = tmp_path / "out"
    arguments = ["claims", "--spec", str(spec), "--out-dir", str(out), "--benchmark", "plain"]
    assert main([*arguments, *files]) == 0
    written = read_ledger(out / "claims.csv")
    top = written[(written["row"] == "overall") & (written["variant_of"] == "")]
    assert dict(zip(top["claim_id"], top["verdict"], strict=True)) == {
        "beats-cmaes": REPRODUCED,
        "beats-turbo": INCONCLUSIVE,
        "rate": INCONCLUSIVE,
    }
    assert set(written["rule_hash"]) == {registration}
    assert (out / "claims.md").is_file()


def test_the_registration_hash_covers_the_records_variants_and_rate_rule(
    spec: ClaimsSpec,
) -> None:
    fewer = replace(spec, records=spec.records[:-1])
    other_rate_rule = replace(spec, registered={"rate_rule": {"t_tolerance": 0.2}})
    other_rule = replace(spec, rule=ClaimsRule(alpha=0.01))
    hashes = {s.registration_hash for s in (spec, fewer, other_rate_rule, other_rule)}
    assert len(hashes) == 4
    assert replace(spec).registration_hash == spec.registration_hash


def test_command_refuses_traces_run_under_another_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _write_traces(tmp_path, traces_of({"casbo": "casbo", "cmaes": "cmaes"}), None)
    spec = _spec_file(tmp_path, [comparison("casbo", ["cmaes"])])
    out = tmp_path / "out"
    command = ["claims", "--spec", str(spec), "--out-dir", str(out), "--benchmark", "plain"]
    assert main([*command, *files]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "was run without a claims rule hash" in error[0]
    assert "rerun it under this rule" in error[0]
    assert not (out / "claims.csv").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give at least one --benchmark GROUP FILE"),
        (["--benchmark", "plain"], "--benchmark plain lists no trace files"),
        (["--benchmark", "plain", "missing.parquet"], "missing.parquet does not exist"),
    ],
)
def test_command_reports_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    spec = _spec_file(tmp_path, [comparison("casbo", ["cmaes"])])
    command = ["claims", "--spec", str(spec), "--out-dir", str(tmp_path), *arguments]
    assert main(command) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert message in error[0]


def test_command_reports_a_bad_spec_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _write_traces(tmp_path, traces_of({"casbo": "casbo", "cmaes": "cmaes"}), "x")
    twice = [comparison("casbo", ["cmaes"]), comparison("casbo", ["cmaes"])]
    for spec, message in (
        (tmp_path / "absent.json", "absent.json does not exist"),
        (_spec_file(tmp_path, twice), "claim record(s) ['beats (paper)'] appear twice"),
    ):
        command = ["claims", "--spec", str(spec), "--out-dir", str(tmp_path / "out")]
        assert main([*command, "--benchmark", "plain", *files]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and message in error[0], error


def test_molecule_cells_compare_at_equal_black_box_calls() -> None:
    """With a ``calls`` column on both sides (molecule traces), a cell is compared at the
    calls every run reached, each side's best-so-far read at its last completed sample
    within them; without one, at evaluations (the same thing for one call a rollout)."""
    from casbo_bench.analysis.claims import _cost_unit, _spent, _values_at

    def run(seed: int, losses: list[float], calls: list[int]) -> pd.DataFrame:
        evaluations = np.arange(1, len(losses) + 1)
        return pd.DataFrame(
            {
                "seed": seed,
                "evaluation": evaluations,
                "best_so_far": np.minimum.accumulate(losses),
                "calls": calls,
                "budget": len(losses),
                "status": "complete",
            }
        )

    # a rollout method: one call each; a steering method: 4 calls a sample, sweeps of 2
    rollouts = pd.concat(
        [run(s, [3.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1], list(range(1, 9))) for s in (0, 1)]
    )
    steered = pd.concat([run(s, [2.5, 0.9, 0.05, 0.01], [8, 8, 16, 16]) for s in (0, 1)])
    assert _cost_unit(rollouts, steered) == "calls"
    assert _cost_unit(rollouts.drop(columns="calls"), steered) == "evaluation"
    assert _spent(rollouts, "calls") == 8 and _spent(steered, "calls") == 16
    # at 8 calls: the rollout method's 8th evaluation, the steering method's first sweep
    np.testing.assert_allclose(_values_at(rollouts, 8, "calls"), [0.1, 0.1])
    np.testing.assert_allclose(_values_at(steered, 8, "calls"), [0.9, 0.9])
    # the evaluation unit reads row 2 of the steering run: 2 samples, but 8 calls of cost
    np.testing.assert_allclose(_values_at(steered, 2, "evaluation"), [0.9, 0.9])
    # a run that never reached the compared calls is missing, not read early
    assert _values_at(rollouts, 9, "calls").empty


def test_a_molecule_side_whose_every_run_failed_is_reported_not_raised() -> None:
    from casbo_bench.analysis.claims import _spent

    failed = pd.DataFrame(
        {
            "seed": [0, 1],
            "evaluation": [1, 1],
            "best_so_far": [np.inf] * 2,
            "calls": [4, 4],
            "budget": [200, 200],
            "status": ["failed", "failed"],
        }
    )
    assert _spent(failed, "calls") == 200
