"""Two runs' claims ledgers side by side: where their verdicts agree, and where not.

Two ledgers are compared only when they were judged under one decision rule (the same
:class:`~casbo_bench.registration.ClaimsRule`, so the same ``rule.hash``): a verdict is a
function of the results *and* the rule, and a different alpha or effect threshold would make
a disagreement say nothing about the results. Their registrations (claim records, variants,
the rate check's rule) may differ; the comparison names both hashes.

Two readings, each of the primary rows only (the reference method's, not its variants'):

- :func:`claim_verdicts`: one row per claim record ``(claim_id, scope)`` present in either
  ledger, with each side's overall verdict (its secondary verdicts in brackets), each side's
  cell counts and whether the primary verdicts agree. A record missing from one side reads
  "not judged".
- :func:`shared_cells`: the cells judged in both, matched on the comparison and the setting
  (claim, scope, method, baseline, problem, d, K, scoring) but not on the budget, so that a
  cell run at 300 evaluations in one config and at 5,000 in the other is set side by side.

:func:`comparison_markdown` writes both as one page, naming the files compared.

>>> claims, default = read_side("published/claims"), read_side("published/default")
>>> print(comparison_markdown(claims, default))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from casbo_bench.analysis.claims import read_ledger
from casbo_bench.documents import markdown_table
from casbo_bench.registration import ClaimsError, ClaimsSpec, read_spec
from casbo_bench.schemas.claims import (
    CELL_VERDICTS,
    CONTRADICTED,
    REPRODUCED,
    secondary_labels,
)

RECORD_KEYS: tuple[str, ...] = ("claim_id", "scope")
"""What identifies a claim record: each is judged on its own."""

CELL_SETTING: tuple[str, ...] = (
    *RECORD_KEYS,
    "method",
    "baseline",
    "problem",
    "d",
    "K",
    "scoring",
)
"""What makes two ledgers' cells the same comparison on the same setting (budget aside)."""

NOT_JUDGED = "not judged"

OPPOSITE = frozenset({REPRODUCED, CONTRADICTED})
"""Two verdicts that say the opposite: not a difference of power but of direction."""


def agreement(first: str, second: str) -> str:
    """``yes`` (the same verdict), ``opposite`` (:data:`OPPOSITE`) or ``no``.

    >>> agreement("reproduced", "contradicted"), agreement("mixed", "not-significant")
    ('opposite', 'no')
    """
    if first == second:
        return "yes"
    return "opposite" if {first, second} == OPPOSITE else "no"


@dataclass(frozen=True)
class LedgerSide:
    """One run's ledger: ``claims.csv`` and ``claims_spec.json`` of a results folder or archive.

    Attributes:
        label: the config's name (``claims``, ``paper-local``), the column heading.
        folder: where the two files are.
        ledger: ``claims.csv``, validated by its schema.
        spec: ``claims_spec.json``: the rule, the records and the config it was run from.
    """

    label: str
    folder: Path
    ledger: pd.DataFrame
    spec: ClaimsSpec


def read_side(folder: str | os.PathLike[str]) -> LedgerSide:
    """The ledger and claims spec in ``folder`` (results/<name> or published/<name>).

    Raises:
        FileNotFoundError: ``folder`` has no ``claims.csv``.
        ClaimsError: its ``claims_spec.json`` is missing or invalid.
        ClaimsValidationError: its ``claims.csv`` fails the ledger schema.
    """
    source = Path(folder)
    spec = read_spec(source / "claims_spec.json")
    ledger = read_ledger(source / "claims.csv")
    return LedgerSide(spec.config.split(" ")[0], source, ledger, spec)


def _labels(first: LedgerSide, second: LedgerSide) -> tuple[str, str]:
    """The two column headings: the config names, told apart by folder or order if equal."""
    if first.label != second.label:
        return first.label, second.label
    if first.folder != second.folder:
        return f"{first.label} ({first.folder})", f"{second.label} ({second.folder})"
    return f"{first.label} (1)", f"{second.label} (2)"


def check_same_rule(first: LedgerSide, second: LedgerSide) -> None:
    """Refuse two ledgers judged under different decision rules.

    Raises:
        ClaimsError: the rules differ; the message gives both.
    """
    if first.spec.rule.hash != second.spec.rule.hash:
        raise ClaimsError(
            f"{first.folder} and {second.folder} were judged under different decision rules "
            f"({first.spec.rule.as_mapping()} against {second.spec.rule.as_mapping()}); "
            f"compare ledgers judged under one rule"
        )


def _primary(ledger: pd.DataFrame, row: str) -> pd.DataFrame:
    return ledger[(ledger["row"] == row) & (ledger["variant_of"] == "")]


def _verdict_text(record: pd.Series, labels: Sequence[str]) -> str:
    """``mixed (10d: contradicted)``: the primary verdict, the secondary ones in brackets."""
    secondary = [
        f"{label}: {record[f'verdict_{label}']}" for label in labels if record[f"verdict_{label}"]
    ]
    return str(record["verdict"]) + (f" ({'; '.join(secondary)})" if secondary else "")


def _cell_counts(ledger: pd.DataFrame) -> pd.Series:
    """``(claim_id, scope)`` -> ``r/c/n/i of N``: the record's cells by verdict (in the order
    reproduced, contradicted, not-significant, inconclusive) and their number."""
    cells = _primary(ledger, "cell")
    counts = (
        cells.groupby(list(RECORD_KEYS))["verdict"]
        .value_counts()
        .unstack(fill_value=0)
        .reindex(columns=list(CELL_VERDICTS), fill_value=0)
    )
    return counts.apply(
        lambda row: "/".join(str(int(n)) for n in row) + f" of {int(row.sum())}", axis=1
    )


def _record_table(side: LedgerSide) -> pd.DataFrame:
    overall = _primary(side.ledger, "overall").set_index(list(RECORD_KEYS))
    labels = secondary_labels(side.ledger.columns)
    return pd.DataFrame(
        {
            "verdict": overall["verdict"],
            "text": overall.apply(_verdict_text, axis=1, labels=labels),
            "cells": _cell_counts(side.ledger).reindex(overall.index, fill_value="0 cells"),
        }
    )


def claim_verdicts(first: LedgerSide, second: LedgerSide) -> pd.DataFrame:
    """One row per claim record of either ledger: each side's verdict and cells, and ``agree``.

    Columns: claim_id, scope, then for each side (headed by its label) the verdict text and
    ``cells <label>`` (``r/c/n/i of N``), then ``agree`` (:func:`agreement`, blank where one
    side did not judge the record). Rows in the first ledger's order, the second's extra
    records after them.

    Raises:
        ClaimsError: the ledgers were judged under different decision rules.
    """
    check_same_rule(first, second)
    one, two = _labels(first, second)
    left, right = _record_table(first), _record_table(second)
    keys = list(dict.fromkeys([*left.index, *right.index]))
    rows = []
    for key in keys:
        a = left.loc[key] if key in left.index else None
        b = right.loc[key] if key in right.index else None
        agree = "" if a is None or b is None else agreement(a.verdict, b.verdict)
        rows.append(
            {
                "claim_id": key[0],
                "scope": key[1],
                one: NOT_JUDGED if a is None else a.text,
                f"cells {one}": "" if a is None else a.cells,
                two: NOT_JUDGED if b is None else b.text,
                f"cells {two}": "" if b is None else b.cells,
                "agree": agree,
            }
        )
    return pd.DataFrame(rows)


def shared_cells(first: LedgerSide, second: LedgerSide) -> pd.DataFrame:
    """The primary cells judged in both ledgers, matched on :data:`CELL_SETTING`.

    Columns: the setting, then ``evaluations``, ``n_seeds``, ``effect`` (rank-biserial r,
    positive: the method lower) and ``verdict`` of each side, suffixed with its label, and
    ``agree`` (:func:`agreement`).

    Raises:
        ClaimsError: the ledgers were judged under different decision rules.
    """
    check_same_rule(first, second)
    one, two = _labels(first, second)
    columns = [*CELL_SETTING, "evaluations", "n_seeds", "effect", "verdict"]
    merged = _primary(first.ledger, "cell")[columns].merge(
        _primary(second.ledger, "cell")[columns],
        on=list(CELL_SETTING),
        suffixes=(f" {one}", f" {two}"),
    )
    merged["agree"] = [
        agreement(a, b)
        for a, b in zip(merged[f"verdict {one}"], merged[f"verdict {two}"], strict=True)
    ]
    return merged.reset_index(drop=True)


def comparison_markdown(first: LedgerSide, second: LedgerSide) -> str:
    """The comparison as a page: what was compared, the verdicts side by side, then the
    records and shared cells where the two disagree.

    Raises:
        ClaimsError: the ledgers were judged under different decision rules.
    """
    one, two = _labels(first, second)
    records = claim_verdicts(first, second)
    cells = shared_cells(first, second)
    judged_both = records[records["agree"] != ""]
    differing = judged_both[judged_both["agree"] != "yes"]
    opposite = differing[differing["agree"] == "opposite"]
    opposite_names = [f"{row.claim_id} ({row.scope})" for row in opposite.itertuples()]
    lines = [
        f"# Claims ledgers side by side: {one} and {two}",
        "",
        f"- {one}: `{first.folder / 'claims.csv'}` (registration `{first.spec.registration_hash}`)",
        f"- {two}: `{second.folder / 'claims.csv'}` (registration "
        f"`{second.spec.registration_hash}`)",
        f"- One decision rule (hash `{first.spec.rule.hash}`): {first.spec.rule.describe()}",
        "",
        "## Verdicts",
        "",
        f"Cells: reproduced/contradicted/not-significant/inconclusive of all the record's "
        f"cells. The primary verdicts agree on {int((judged_both['agree'] == 'yes').sum())} of "
        f"the {len(judged_both)} records judged in both; they are opposite (one reproduced, "
        f"the other contradicted) in {len(opposite)}{_listed(opposite_names)}.",
        "",
        *markdown_table(records, missing=""),
        "",
        "## Where they disagree",
        "",
    ]
    if differing.empty:
        lines.append("Every record judged in both has the same primary verdict.")
    for claim_id, scope in zip(differing["claim_id"], differing["scope"], strict=True):
        lines.append(
            f"- {claim_id} ({scope}): {one} {_reason(first, claim_id, scope)}; "
            f"{two} {_reason(second, claim_id, scope)}"
        )
    lines += [
        "",
        "## Shared cells",
        "",
        f"{len(cells)} cells were judged in both (same claim, scope, method, baseline, problem, "
        f"d, K and scoring; the budgets may differ); their verdicts agree in "
        f"{int((cells['agree'] == 'yes').sum())} and are opposite in "
        f"{int((cells['agree'] == 'opposite').sum())}.",
        "",
    ]
    if (cells["agree"] != "yes").any():
        lines += [
            "The cells that differ:",
            "",
            *markdown_table(cells[cells["agree"] != "yes"], ".3g", missing=""),
            "",
        ]
    return "\n".join(lines)


def _reason(side: LedgerSide, claim_id: str, scope: str) -> str:
    """``verdict: reason`` of one record's primary overall row."""
    overall = _primary(side.ledger, "overall")
    record = overall[(overall["claim_id"] == claim_id) & (overall["scope"] == scope)].iloc[0]
    return f"{record['verdict']}: {record['reason']}"


def _listed(names: Sequence[str]) -> str:
    return f": {', '.join(names)}" if names else ""
