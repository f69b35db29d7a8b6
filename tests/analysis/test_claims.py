"""The claims ledger: cell and overall verdicts, the rate claim, robustness flips, schema."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis import claims
from casbo_bench.analysis.claims import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    ClaimsError,
    ClaimsRule,
    build_ledger,
    rank_biserial,
    write_ledger,
)
from casbo_bench.analysis.rates import RateCheck, RateRule, rate_verdicts
from casbo_bench.cli import main
from casbo_bench.runner import write_trace
from casbo_bench.schemas.claims import CLAIM_SOURCES, ClaimsValidationError, validate_claims
from casbo_bench.schemas.trace import validate_trace

from .synthetic import synthetic_traces
from .test_rates import synthetic_gaps

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


def overall(ledger: pd.DataFrame, claim_id: str, method: str = "casbo") -> pd.Series:
    rows = ledger[
        (ledger["claim_id"] == claim_id)
        & (ledger["scope"] == "overall")
        & (ledger["method"] == method)
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def cells(ledger: pd.DataFrame, claim_id: str, method: str = "casbo") -> pd.DataFrame:
    return ledger[
        (ledger["claim_id"] == claim_id)
        & (ledger["scope"] == "cell")
        & (ledger["method"] == method)
    ]


def test_rank_biserial_correlation() -> None:
    assert rank_biserial([1.0, 2.0, 3.0]) == 1.0
    assert rank_biserial([-1.0, -2.0]) == -1.0
    assert rank_biserial([0.0, 0.0]) == 0.0
    # ranks of |d|: 1 -> 1, -2 -> 2, 3 -> 3: (1 + 3 - 2) / 6
    assert rank_biserial([1.0, -2.0, 3.0]) == pytest.approx(2.0 / 6.0)
    assert rank_biserial([1.0, -1.0]) == 0.0  # tied magnitudes share their rank


def test_claims_are_reproduced_where_casbo_is_clearly_better() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "turbo"})
    ledger = build_ledger({"plain": traces}, RULE, "test (synthetic)")
    for claim_id in ("beats-cmaes", "beats-turbo"):
        row = overall(ledger, claim_id)
        assert row["verdict"] == REPRODUCED, row["reason"]
        own = cells(ledger, claim_id)
        assert len(own) == 8  # 2 problems x 2 d x 2 (K, scoring)
        assert (own["verdict"] == REPRODUCED).all()
        assert (own["p_holm"] < 0.05).all()
        assert (own["effect_size"] >= 0.3).all()
        assert (own["n_seeds"] == 12).all()
    assert overall(ledger, "beats-cmaes")["source"] == "paper"


def test_claims_are_not_reproduced_where_the_baseline_is_better() -> None:
    # casbo-diag gets the fastest synthetic decay, casbo the middle one.
    traces = traces_of({"casbo": "casbo-diag", "cmaes": "casbo", "random": "casbo-latent"})
    ledger = build_ledger({"plain": traces}, RULE, "test (synthetic)")
    diag = overall(ledger, "full-covariance")
    assert diag["source"] == "ours"
    assert diag["verdict"] == NOT_REPRODUCED
    assert "8 not reproduced" in diag["reason"]
    assert all(
        "casbo-diag lower in median" in r for r in cells(ledger, "full-covariance")["reason"]
    )
    # per-step counts sequential cells only: the synthetic grid has K = 3 cells
    latent = cells(ledger, "per-step")
    assert (latent["K"] > 1).all() and len(latent) == 4
    assert overall(ledger, "per-step")["verdict"] == REPRODUCED


def test_claims_are_inconclusive_with_too_few_seeds() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "turbo"}, seeds=3)
    ledger = build_ledger({"plain": traces}, RULE, "test (synthetic)")
    row = overall(ledger, "beats-cmaes")
    assert row["verdict"] == INCONCLUSIVE
    assert "too few seeds: 3 paired < 10" in row["reason"]
    assert cells(ledger, "beats-cmaes")["p_value"].isna().all()


def test_a_claim_without_its_baseline_is_inconclusive() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    ledger = build_ledger({"plain": traces}, RULE, "test (synthetic)")
    row = overall(ledger, "beats-turbo")
    assert row["verdict"] == INCONCLUSIVE
    assert "no turbo runs in this cell" in row["reason"]


def test_the_overall_verdict_needs_the_configured_share_of_cells() -> None:
    # casbo beats cmaes on sphere only: cmaes takes casbo's label on ellipsoid.
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    ellipsoid = traces["problem"] == "ellipsoid"
    swapped = traces["method"].where(
        ~ellipsoid, traces["method"].map({"casbo": "cmaes", "cmaes": "casbo"})
    )
    traces = validate_trace(traces.assign(method=swapped, optimizer=swapped), source="test")
    half = build_ledger({"plain": traces}, RULE, "test")
    assert overall(half, "beats-cmaes")["verdict"] == REPRODUCED  # 4 of 8 >= 50%
    strict = ClaimsRule(0.05, 10, 0.3, min_fraction=0.75, rate_min_seeds=5)
    assert (
        overall(build_ledger({"plain": traces}, strict, "test"), "beats-cmaes")["verdict"]
        == NOT_REPRODUCED
    )  # 4 of 8 not reproduced > 25%


def test_a_capped_baseline_is_compared_at_its_own_budget() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "turbo"}, budget=40)
    turbo = traces["method"] == "turbo"
    capped = traces[~turbo | (traces["evaluation"] <= 16)]
    capped = validate_trace(
        capped.assign(budget=np.where(capped["method"] == "turbo", 16, 40)), source="test"
    )
    ledger = build_ledger({"plain": capped}, RULE, "test")
    own = cells(ledger, "beats-turbo")
    assert (own["evaluations"] == 16).all()
    assert own["reason"].str.contains("compared at 16 evaluations \\(turbo's budget\\)").all()
    assert (cells(ledger, "beats-cmaes")["evaluations"] == 40).all()


def test_the_molecule_claim_is_inconclusive_until_its_benchmark_runs() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    ledger = build_ledger({"plain": traces}, RULE, "test")
    row = overall(ledger, "molecule")
    assert row["verdict"] == INCONCLUSIVE
    assert row["reason"] == "molecule benchmark not run in this config"
    with_molecules = build_ledger(
        {"plain": traces, "molecules": traces_of({"casbo": "casbo", "random": "cmaes"})},
        RULE,
        "test",
        molecule_benchmark="molecules",
    )
    molecule_cells = cells(with_molecules, "molecule")
    assert set(molecule_cells["group"]) == {"molecules"}
    evidence = overall(with_molecules, "molecule")["evidence"]
    assert "tables/molecules/molecule_scores.md" in evidence and "final_loss" not in evidence
    assert set(cells(with_molecules, "beats-cmaes")["group"]) == {"plain"}
    with pytest.raises(ClaimsError, match="molecule benchmark 'qm9' is not among"):
        build_ledger({"plain": traces}, RULE, "test", molecule_benchmark="qm9")


def test_every_claim_has_an_overall_row_labelled_with_its_source() -> None:
    ledger = build_ledger({"plain": traces_of({"casbo": "casbo", "cmaes": "cmaes"})}, RULE, "t")
    primary = ledger[(ledger["scope"] == "overall") & (ledger["variant_of"] == "")]
    assert primary["claim_id"].tolist() == list(CLAIM_SOURCES)
    assert dict(zip(primary["claim_id"], primary["source"], strict=True)) == CLAIM_SOURCES
    assert (primary["reason"].str.len() > 0).all()


# --- the rate claim -----------------------------------------------------------------


def _rate_verdicts(claim_exponent: float, control_exponent: float, seeds: int = 6) -> pd.DataFrame:
    gaps = pd.concat(
        [
            synthetic_gaps(claim_exponent, 1.5, seeds=seeds),
            synthetic_gaps(control_exponent, 1.0, seeds=seeds, method="random"),
        ],
        ignore_index=True,
    )
    checks = [RateCheck("casbo-decay", "sphere", "claim"), RateCheck("random", "sphere", "control")]
    return rate_verdicts(gaps, checks, RateRule(0.1, 0.25, 2.0, n_resamples=300))


def _rate_ledger(verdicts: pd.DataFrame | None) -> pd.DataFrame:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    return build_ledger({"plain": traces}, RULE, "test", rate_verdicts=verdicts)


def test_the_rate_claim_follows_the_rate_verdicts() -> None:
    passing = overall(_rate_ledger(_rate_verdicts(-0.8, 0.0)), "rate", "casbo-decay")
    assert passing["verdict"] == REPRODUCED, passing["reason"]
    failing = overall(_rate_ledger(_rate_verdicts(-0.2, 0.0)), "rate", "casbo-decay")
    assert failing["verdict"] == NOT_REPRODUCED
    assert "fails on sphere" in failing["reason"]


def test_the_rate_claim_is_inconclusive_when_the_control_passes() -> None:
    row = overall(_rate_ledger(_rate_verdicts(-0.8, -0.8)), "rate", "casbo-decay")
    assert row["verdict"] == INCONCLUSIVE
    assert "random on sphere" in row["reason"] and "cannot tell" in row["reason"]


def test_the_rate_claim_is_inconclusive_with_too_few_seeds_or_no_check() -> None:
    few = overall(_rate_ledger(_rate_verdicts(-0.2, 0.0, seeds=3)), "rate", "casbo-decay")
    assert few["verdict"] == INCONCLUSIVE
    assert few["reason"].startswith("too few seeds: 3 < 5")
    absent = overall(_rate_ledger(None), "rate")
    assert absent["verdict"] == INCONCLUSIVE
    assert absent["reason"] == "rate check not run in this config"


# --- robustness ---------------------------------------------------------------------


def test_a_variant_that_changes_a_verdict_is_reported_as_a_flip() -> None:
    # casbo-bad (the slow synthetic method) in casbo's place loses to cmaes.
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "casbo-bad"})
    ledger = build_ledger({"plain": traces}, RULE, "test", variants=["casbo-bad"])
    primary, variant = overall(ledger, "beats-cmaes"), overall(ledger, "beats-cmaes", "casbo-bad")
    assert (primary["verdict"], variant["verdict"]) == (REPRODUCED, NOT_REPRODUCED)
    assert variant["variant_of"] == "casbo"
    assert variant["flipped"] and not primary["flipped"]
    assert variant["reference_verdict"] == REPRODUCED
    assert cells(ledger, "beats-cmaes", "casbo-bad")["flipped"].all()
    # the molecule claim is inconclusive for both: no flip
    assert not overall(ledger, "molecule", "casbo-bad")["flipped"]


def test_a_variant_run_on_some_cells_is_compared_with_casbo_on_those_cells() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    variant = traces[(traces["method"] == "casbo") & (traces["problem"] == "sphere")]
    both = pd.concat([traces, variant.assign(method="casbo-rank")], ignore_index=True)
    ledger = build_ledger({"plain": both}, RULE, "test", variants=["casbo-rank"])
    own = cells(ledger, "beats-cmaes", "casbo-rank")
    assert set(own["problem"]) == {"sphere"} and len(own) == 4
    row = overall(ledger, "beats-cmaes", "casbo-rank")
    assert row["verdict"] == row["reference_verdict"] == REPRODUCED
    assert "4 of 4 cells" in row["reason"]
    assert not row["flipped"]


def test_rate_variants_are_rederived_from_their_own_verdicts() -> None:
    gaps = pd.concat(
        [
            synthetic_gaps(-0.8, 1.5, seeds=6),
            synthetic_gaps(-0.1, 1.5, seeds=6, method="casbo-decay-rank"),
            synthetic_gaps(0.0, 1.0, seeds=6, method="random"),
        ],
        ignore_index=True,
    )
    checks = [
        RateCheck("casbo-decay", "sphere", "claim"),
        RateCheck("casbo-decay-rank", "sphere", "claim", variant_of="casbo-decay"),
        RateCheck("random", "sphere", "control"),
    ]
    verdicts = rate_verdicts(gaps, checks, RateRule(0.1, 0.25, 2.0, n_resamples=300))
    ledger = _rate_ledger(verdicts)
    variant = overall(ledger, "rate", "casbo-decay-rank")
    assert variant["verdict"] == NOT_REPRODUCED
    assert variant["flipped"]


def test_variants_must_have_runs_and_differ_from_the_reference() -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes"})
    with pytest.raises(ClaimsError, match="have no runs"):
        build_ledger({"plain": traces}, RULE, "test", variants=["casbo-rank"])
    with pytest.raises(ClaimsError, match="differ from the reference"):
        build_ledger({"plain": traces}, RULE, "test", variants=["casbo"])


# --- schema, files, command line ----------------------------------------------------


@pytest.fixture(scope="module")
def ledger() -> pd.DataFrame:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "casbo-bad"})
    return build_ledger({"plain": traces}, RULE, "test (synthetic)", variants=["casbo-bad"])


def test_schema_rejects_a_mislabelled_or_unsupported_ledger(ledger: pd.DataFrame) -> None:
    ours = ledger["claim_id"] == "full-covariance"
    with pytest.raises(ClaimsValidationError, match="ours rows are labelled ours"):
        validate_claims(ledger.assign(source=ledger["source"].where(~ours, "paper")))
    tested = ledger["p_holm"].notna()
    with pytest.raises(ClaimsValidationError, match="needs p_holm < alpha"):
        validate_claims(ledger.assign(p_holm=ledger["p_holm"].where(~tested, 0.9)))
    with pytest.raises(ClaimsValidationError, match="p_holm >= p_value"):
        validate_claims(ledger.assign(p_value=ledger["p_value"].where(~tested, 1.0)))
    with pytest.raises(ClaimsValidationError, match="only a variant's row can be flipped"):
        validate_claims(ledger.assign(flipped=True))
    with pytest.raises(ClaimsValidationError, match="lacks claim\\(s\\) \\['molecule'\\]"):
        validate_claims(ledger[ledger["claim_id"] != "molecule"])
    with pytest.raises(ClaimsValidationError, match="column 'verdict'"):
        validate_claims(ledger.assign(verdict="confirmed"))


def test_ledger_files(tmp_path: Path, ledger: pd.DataFrame) -> None:
    written = write_ledger(ledger, tmp_path, RULE)
    assert [path.name for path in written] == ["claims.csv", "claims.md"]
    back = pd.read_csv(tmp_path / "claims.csv", keep_default_na=False, na_values={"d": [""]})
    assert len(back) == len(ledger)
    markdown = (tmp_path / "claims.md").read_text()
    assert "## Verdicts" in markdown and "## Robustness" in markdown
    assert "Flipped overall verdicts: 1 of 5." in markdown
    assert "molecule benchmark not run in this config" in markdown
    assert RULE.describe() in markdown


def test_command_writes_the_ledger(tmp_path: Path) -> None:
    traces = traces_of({"casbo": "casbo", "cmaes": "cmaes", "random": "casbo-bad"})
    files = []
    for method, runs in traces.groupby("method"):
        path = tmp_path / f"{method}.parquet"
        write_trace(runs.reset_index(drop=True), path, {"test": True})
        files.append(str(path))
    verdicts = _rate_verdicts(-0.8, 0.0)
    verdicts.to_csv(tmp_path / "verdicts.csv", index=False)
    arguments = [
        "claims",
        "--out-dir",
        str(tmp_path / "out"),
        "--config-label",
        "test (synthetic)",
        "--benchmark",
        "plain",
        *files,
        "--rate-verdicts",
        str(tmp_path / "verdicts.csv"),
        "--variant",
        "casbo-bad",
        "--alpha",
        "0.05",
        "--min-seeds",
        "10",
        "--min-effect",
        "0.3",
        "--min-fraction",
        "0.5",
        "--rate-min-seeds",
        "5",
    ]
    assert main(arguments) == 0
    written = pd.read_csv(tmp_path / "out" / "claims.csv", keep_default_na=False)
    top = written[(written["scope"] == "overall") & (written["variant_of"] == "")]
    assert dict(zip(top["claim_id"], top["verdict"], strict=True)) == {
        "rate": REPRODUCED,
        "beats-cmaes": REPRODUCED,
        "beats-turbo": INCONCLUSIVE,
        "molecule": INCONCLUSIVE,
        "full-covariance": INCONCLUSIVE,
        "per-step": INCONCLUSIVE,
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give at least one --benchmark"),
        (["--benchmark", "plain"], "--benchmark plain lists no trace files"),
        (["--benchmark", "plain", "missing.parquet"], "missing.parquet does not exist"),
    ],
)
def test_command_reports_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    rule = ["--alpha", "0.05", "--min-seeds", "10", "--min-effect", "0.3"]
    rule += ["--min-fraction", "0.5", "--rate-min-seeds", "5"]
    command = ["claims", "--out-dir", str(tmp_path), "--config-label", "t", *rule, *arguments]
    assert main(command) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert message in error[0]


def test_rule_rejects_impossible_settings() -> None:
    with pytest.raises(ClaimsError, match="alpha must lie"):
        ClaimsRule(1.5, 10, 0.3, 0.5, 5)
    with pytest.raises(ClaimsError, match="min_fraction must lie"):
        ClaimsRule(0.05, 10, 0.3, 0.0, 5)
    assert "Holm-adjusted" in claims.ClaimsRule(0.05, 10, 0.3, 0.5, 5).describe()
