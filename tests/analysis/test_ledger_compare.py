"""Two claims ledgers side by side: agreement, opposite verdicts, records judged on one side
only, shared cells, the one-rule refusal and the command."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from casbo_bench.analysis.ledger_compare import (
    LedgerSide,
    agreement,
    claim_verdicts,
    comparison_markdown,
    read_side,
    shared_cells,
)
from casbo_bench.cli import main
from casbo_bench.registration import ClaimsError
from tests.snakemake_runs import REPOSITORY

CLAIMS = REPOSITORY / "published" / "claims"
DEFAULT = REPOSITORY / "published" / "default"


@pytest.fixture(scope="module")
def claims() -> LedgerSide:
    return read_side(CLAIMS)


def _primary_cells(ledger: pd.DataFrame) -> pd.DataFrame:
    return ledger[(ledger["row"] == "cell") & (ledger["variant_of"] == "")]


def _with_verdict(side: LedgerSide, claim_id: str, scope: str, verdict: str) -> LedgerSide:
    """``side`` with one record's overall verdict replaced (as another run might judge it)."""
    ledger = side.ledger.copy()
    row = (
        (ledger["row"] == "overall")
        & (ledger["variant_of"] == "")
        & (ledger["claim_id"] == claim_id)
        & (ledger["scope"] == scope)
    )
    assert row.sum() == 1
    ledger.loc[row, "verdict"] = verdict
    return replace(side, label="other", folder=Path("other"), ledger=ledger)


def test_agreement_tells_opposite_from_different_and_undecided() -> None:
    assert agreement("mixed", "mixed") == "yes"
    assert agreement("contradicted", "reproduced") == "opposite"
    assert agreement("mixed", "reproduced") == "no"
    # Too few seeds on either side decides nothing, not even agreement.
    assert agreement("inconclusive", "reproduced") == "undecided"
    assert agreement("inconclusive", "inconclusive") == "undecided"
    assert agreement("not judged", "mixed") == "undecided"


def test_a_ledger_agrees_with_itself_wherever_it_decided(claims: LedgerSide) -> None:
    records = claim_verdicts(claims, claims)
    overall = claims.ledger[
        (claims.ledger["row"] == "overall") & (claims.ledger["variant_of"] == "")
    ]
    assert len(records) == len(overall)
    decided = (overall["verdict"] != "inconclusive").to_numpy()
    assert decided.sum() > 0
    assert set(records["agree"][decided]) == {"yes"}
    assert set(records["agree"][~decided]) <= {"undecided"}
    cells = shared_cells(claims, claims)
    assert len(cells) == len(_primary_cells(claims.ledger))
    assert records["shared cells"].sum() == len(cells)
    assert set(cells["agree"]) <= {"yes", "undecided"}
    page = comparison_markdown(claims, claims)
    assert "No record decided in both has different primary verdicts." in page
    assert "The cells decided differently" not in page


def test_a_changed_verdict_is_named_with_both_reasons(claims: LedgerSide) -> None:
    other = _with_verdict(claims, "beats-cmaes", "matched", "reproduced")
    records = claim_verdicts(claims, other).set_index(["claim_id", "scope"])
    assert records.loc[("beats-cmaes", "matched"), "agree"] == "opposite"
    assert str(records.loc[("beats-cmaes", "matched"), "other"]).startswith("reproduced")
    assert set(records.drop(index=[("beats-cmaes", "matched")])["agree"]) <= {"yes", "undecided"}
    page = comparison_markdown(claims, other)
    assert "1 opposite (one reproduced, the other contradicted)" in page
    disagreement = [
        line for line in page.splitlines() if line.startswith("- beats-cmaes (matched)")
    ]
    assert len(disagreement) == 1
    assert "claims contradicted: 0 reproduced, 10 contradicted" in disagreement[0]
    assert "other reproduced:" in disagreement[0]


def test_a_record_judged_on_one_side_only(claims: LedgerSide) -> None:
    ledger = claims.ledger[claims.ledger["claim_id"] != "per-step"]
    other = replace(claims, label="other", folder=Path("other"), ledger=ledger)
    for first, second, missing in ((claims, other, "other"), (other, claims, "other")):
        records = claim_verdicts(first, second).set_index(["claim_id", "scope"])
        assert records.loc[("per-step", "ablation"), missing] == "not judged"
        assert records.loc[("per-step", "ablation"), "agree"] == "undecided"
        assert records.loc[("per-step", "ablation"), "shared cells"] == 0


def test_a_rate_claim_without_a_rate_check_is_undecided(claims: LedgerSide) -> None:
    """paper-local runs no rate check: its rate record is inconclusive with no cells."""
    ledger = claims.ledger
    rate = ledger["claim_id"] == "rate"
    ledger = ledger[~(rate & (ledger["row"] == "cell"))].copy()
    ledger.loc[rate, "verdict"] = "inconclusive"
    ledger.loc[rate, "reason"] = "rate check not run in this config"
    other = replace(claims, label="other", folder=Path("other"), ledger=ledger)
    records = claim_verdicts(claims, other).set_index(["claim_id", "scope"])
    assert records.loc[("rate", "paper"), "cells other"] == "0/0/0/0 of 0"
    assert records.loc[("rate", "paper"), "agree"] == "undecided"


def test_a_side_without_cells_is_compared() -> None:
    side = read_side(CLAIMS)
    overall_only = side.ledger[side.ledger["row"] == "overall"]
    other = replace(side, label="other", folder=Path("other"), ledger=overall_only)
    records = claim_verdicts(side, other)
    assert set(records["cells other"]) == {"0/0/0/0 of 0"}
    assert "other: `other/claims.csv`" in comparison_markdown(side, other)
    assert "no cells" in comparison_markdown(side, other)


def test_cells_are_matched_across_budgets(claims: LedgerSide) -> None:
    """A cell run at another budget (5,000 evaluations instead of 300) is the same cell."""
    ledger = claims.ledger.copy()
    ledger["evaluations"] = ledger["evaluations"] * 10
    other = replace(claims, label="other", folder=Path("other"), ledger=ledger)
    cells = shared_cells(claims, other)
    assert len(cells) == len(_primary_cells(claims.ledger))
    assert (cells["evaluations other"] == 10 * cells["evaluations claims"]).all()


def test_the_default_run_decides_nothing_the_claims_run_decided() -> None:
    """The default (3 seeds) and claims (15 seeds) runs share their d = 4, 10 cells; the
    default's are all inconclusive (fewer than 10 seeds): undecided, never agreement."""
    first, second = read_side(CLAIMS), read_side(DEFAULT)
    cells = shared_cells(first, second)
    comparisons = cells[cells["claim_id"] != "rate"]
    assert len(comparisons) > 0
    assert set(comparisons["n_seeds claims"]) == {15}
    assert set(comparisons["n_seeds default"]) == {3}
    assert set(cells["agree"]) == {"undecided"}
    assert set(claim_verdicts(first, second)["agree"]) == {"undecided"}


def test_ledgers_under_different_rules_are_refused(claims: LedgerSide) -> None:
    stricter = replace(claims.spec, rule=replace(claims.spec.rule, alpha=0.01))
    other = replace(claims, label="other", folder=Path("other"), spec=stricter)
    with pytest.raises(ClaimsError, match=r"different decision rules \(alpha 0.05 against 0.01\)"):
        claim_verdicts(claims, other)


def test_command_writes_the_page_and_names_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "side-by-side.md"
    assert main(["compare-ledgers", str(CLAIMS), str(DEFAULT), "--out", str(out)]) == 0
    capsys.readouterr()
    assert out.read_text(encoding="utf-8") == comparison_markdown(
        read_side(CLAIMS), read_side(DEFAULT)
    )
    assert main(["compare-ledgers", str(CLAIMS), str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "missing is not a folder; give results/<name> or published/<name>" in error
