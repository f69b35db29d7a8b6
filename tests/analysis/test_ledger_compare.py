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


def test_agreement_tells_opposite_from_different() -> None:
    assert agreement("mixed", "mixed") == "yes"
    assert agreement("contradicted", "reproduced") == "opposite"
    assert agreement("inconclusive", "reproduced") == "no"


def test_a_ledger_agrees_with_itself_everywhere(claims: LedgerSide) -> None:
    records = claim_verdicts(claims, claims)
    overall = claims.ledger[
        (claims.ledger["row"] == "overall") & (claims.ledger["variant_of"] == "")
    ]
    assert len(records) == len(overall)
    assert set(records["agree"]) == {"yes"}
    cells = shared_cells(claims, claims)
    assert len(cells) == len(_primary_cells(claims.ledger))
    assert set(cells["agree"]) == {"yes"}
    page = comparison_markdown(claims, claims)
    assert "Every record judged in both has the same primary verdict." in page
    assert "The cells that differ" not in page


def test_a_changed_verdict_is_named_with_both_reasons(claims: LedgerSide) -> None:
    other = _with_verdict(claims, "beats-cmaes", "matched", "reproduced")
    records = claim_verdicts(claims, other).set_index(["claim_id", "scope"])
    assert records.loc[("beats-cmaes", "matched"), "agree"] == "opposite"
    assert str(records.loc[("beats-cmaes", "matched"), "other"]).startswith("reproduced")
    assert set(records.drop(index=[("beats-cmaes", "matched")])["agree"]) == {"yes"}
    page = comparison_markdown(claims, other)
    assert (
        "they are opposite (one reproduced, the other contradicted) in 1: beats-cmaes (matched)"
        in page
    )
    disagreement = [
        line for line in page.splitlines() if line.startswith("- beats-cmaes (matched)")
    ]
    assert len(disagreement) == 1
    assert "claims contradicted: 0 reproduced, 10 contradicted" in disagreement[0]
    assert "other reproduced:" in disagreement[0]


def test_a_record_judged_on_one_side_only(claims: LedgerSide) -> None:
    ledger = claims.ledger[claims.ledger["claim_id"] != "per-step"]
    other = replace(claims, label="other", folder=Path("other"), ledger=ledger)
    records = claim_verdicts(claims, other).set_index(["claim_id", "scope"])
    assert records.loc[("per-step", "ablation"), "other"] == "not judged"
    assert records.loc[("per-step", "ablation"), "agree"] == ""
    assert ("per-step", "ablation") not in set(
        map(tuple, shared_cells(claims, other)[["claim_id", "scope"]].to_numpy())
    )


def test_cells_are_matched_across_budgets() -> None:
    """The default (3 seeds) and claims (15 seeds) runs share their d = 4, 10 cells; the
    default's are all inconclusive (fewer than 10 seeds), so none agrees."""
    first, second = read_side(CLAIMS), read_side(DEFAULT)
    cells = shared_cells(first, second)
    assert len(cells) > 0
    assert set(cells["verdict default"]) == {"inconclusive"}
    comparisons = cells[cells["claim_id"] != "rate"]
    assert set(comparisons["n_seeds claims"]) == {15}
    assert set(comparisons["n_seeds default"]) == {3}
    assert set(cells["agree"]) == {"no"}


def test_ledgers_under_different_rules_are_refused(claims: LedgerSide) -> None:
    stricter = replace(claims.spec, rule=replace(claims.spec.rule, alpha=0.01))
    other = replace(claims, label="other", folder=Path("other"), spec=stricter)
    with pytest.raises(ClaimsError, match="different decision rules"):
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
