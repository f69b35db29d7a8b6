"""Two runs' claims ledgers side by side: where their verdicts agree, and where not.

Two ledgers are compared only when they were judged under one decision rule (the same
:class:`~casbo_bench.registration.ClaimsRule`, so the same ``rule.hash``): a verdict is a
function of the results *and* the rule, and a different alpha or effect threshold would make
a disagreement say nothing about the results. Their registrations (claim records, variants,
the rate check's rule) may differ; the comparison names both hashes.

Two readings, each of the primary rows only (the reference method's, not its variants'):

- :func:`claim_verdicts`: one row per claim record ``(claim_id, scope)`` present in either
  ledger, with each side's overall verdict (its secondary verdicts in brackets), each side's
  cell counts and whether the primary verdicts agree (:func:`agreement`: an inconclusive
  verdict, or a record one side did not judge, is *undecided*, never an agreement). A record
  missing from one side reads "not judged".
- :func:`shared_cells`: the cells judged in both, matched on the comparison and the setting
  (claim, scope, method, baseline, group, problem, d, K, scoring) but not on the budget, so
  that a cell run at 300 evaluations in one config and at 5,000 in the other is set side by
  side.

:func:`comparison_markdown` writes both as one page, naming the files compared.

>>> claims = read_side("published/claims")  # doctest: +SKIP
>>> print(comparison_markdown(claims, read_side("published/default")))  # doctest: +SKIP
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
    CELL_IDENTITY,
    CELL_VERDICTS,
    CONTRADICTED,
    INCONCLUSIVE,
    REPRODUCED,
    secondary_labels,
)

RECORD_KEYS: tuple[str, ...] = ("claim_id", "scope")
"""What identifies a claim record: each is judged on its own."""

CELL_SETTING: tuple[str, ...] = CELL_IDENTITY
"""What makes two ledgers' cells the same comparison on the same setting (budget aside). A
rate cell has no d (NA); pandas matches NA keys with each other, so rate cells pair by problem."""

NOT_JUDGED = "not judged"

OPPOSITE = frozenset({REPRODUCED, CONTRADICTED})
"""Two verdicts that say the opposite: not a difference of power but of direction."""

UNDECIDED = frozenset({INCONCLUSIVE, NOT_JUDGED})
"""Verdicts that decide nothing (too few seeds, a missing run, no cell): no side to agree with."""


def agreement(first: str, second: str) -> str:
    """``undecided`` (either verdict in :data:`UNDECIDED`), ``yes`` (the same decided verdict),
    ``opposite`` (:data:`OPPOSITE`) or ``no``.

    >>> agreement("reproduced", "contradicted"), agreement("mixed", "not-significant")
    ('opposite', 'no')
    >>> agreement("inconclusive", "inconclusive")
    'undecided'
    """
    if first in UNDECIDED or second in UNDECIDED:
        return "undecided"
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
        ClaimsError: the rules differ; the message names the fields that do.
    """
    rules = first.spec.rule.as_mapping(), second.spec.rule.as_mapping()
    differing = [
        f"{name} {rules[0][name]} against {rules[1][name]}"
        for name in rules[0]
        if rules[0][name] != rules[1][name]
    ]
    if differing:
        raise ClaimsError(
            f"{first.folder} and {second.folder} were judged under different decision rules "
            f"({'; '.join(differing)}); judge one run again under the other's claims.rule "
            f"(casbo-bench claims) before comparing"
        )


def differently_defined(first: LedgerSide, second: LedgerSide) -> list[str]:
    """The records both specs define, as ``claim_id (scope)``, whose definitions differ
    (sentence, groups, comparisons or rate method): their verdicts answer different claims."""
    own = {record.title: record for record in first.spec.records}
    return [
        record.title
        for record in second.spec.records
        if record.title in own and own[record.title] != record
    ]


def _primary(ledger: pd.DataFrame, row: str) -> pd.DataFrame:
    """The reference method's rows of kind ``row`` (``overall`` or ``cell``), variants left out."""
    return ledger[(ledger["row"] == row) & (ledger["variant_of"] == "")]


def _verdict_text(record: pd.Series, labels: Sequence[str]) -> str:
    """``mixed (10d: contradicted)``: the primary verdict, the secondary ones in brackets."""
    secondary = [
        f"{label}: {record[f'verdict_{label}']}" for label in labels if record[f"verdict_{label}"]
    ]
    return str(record["verdict"]) + (f" ({'; '.join(secondary)})" if secondary else "")


def _count_text(counts: Sequence[int]) -> str:
    """``r/c/n/i of N``."""
    return "/".join(str(int(n)) for n in counts) + f" of {int(sum(counts))}"


def _cell_counts(ledger: pd.DataFrame) -> pd.Series:
    """``(claim_id, scope)`` -> ``r/c/n/i of N``: the record's cells by verdict (in the order
    reproduced, contradicted, not-significant, inconclusive) and their number."""
    cells = _primary(ledger, "cell")
    if cells.empty:
        return pd.Series(dtype=str)
    counts = (
        cells.groupby(list(RECORD_KEYS))["verdict"]
        .value_counts()
        .unstack(fill_value=0)
        .reindex(columns=list(CELL_VERDICTS), fill_value=0)
    )
    texts: list[str] = [_count_text(row.tolist()) for row in counts.to_numpy()]
    return pd.Series(texts, index=counts.index, dtype=str)


def _record_table(side: LedgerSide) -> pd.DataFrame:
    overall = _primary(side.ledger, "overall").set_index(list(RECORD_KEYS))
    labels = secondary_labels(side.ledger.columns)
    return pd.DataFrame(
        {
            "verdict": overall["verdict"],
            "text": [_verdict_text(record, labels) for _, record in overall.iterrows()],
            "cells": _cell_counts(side.ledger).reindex(
                overall.index, fill_value=_count_text([0] * len(CELL_VERDICTS))
            ),
        },
        index=overall.index,
    )


def claim_verdicts(
    first: LedgerSide, second: LedgerSide, cells: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per claim record of either ledger: each side's verdict and cells, and ``agree``.

    Columns: claim_id, scope, then for each side (headed by its label) the verdict text and
    ``cells <label>`` (``r/c/n/i of N``), then ``shared cells`` (how many of the record's
    cells both judged, :func:`shared_cells`) and ``agree`` (:func:`agreement`; ``undecided``
    also where one side did not judge the record). Rows in the first ledger's order, the
    second's extra records after them. ``cells``: :func:`shared_cells` of the two sides where
    the caller already has it.

    Raises:
        ClaimsError: the ledgers were judged under different decision rules.
    """
    check_same_rule(first, second)
    one, two = _labels(first, second)
    left, right = _record_table(first), _record_table(second)
    if cells is None:
        cells = shared_cells(first, second)
    shared = cells.groupby(list(RECORD_KEYS)).size()
    rows = []
    for key in dict.fromkeys([*left.index, *right.index]):
        a = left.loc[key] if key in left.index else None
        b = right.loc[key] if key in right.index else None
        rows.append(
            {
                "claim_id": key[0],
                "scope": key[1],
                one: NOT_JUDGED if a is None else a.text,
                f"cells {one}": "" if a is None else a.cells,
                two: NOT_JUDGED if b is None else b.text,
                f"cells {two}": "" if b is None else b.cells,
                "shared cells": int(shared.get(key, 0)),
                "agree": agreement(
                    NOT_JUDGED if a is None else a.verdict, NOT_JUDGED if b is None else b.verdict
                ),
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
        validate="one_to_one",
    )
    merged["agree"] = [
        agreement(a, b)
        for a, b in zip(merged[f"verdict {one}"], merged[f"verdict {two}"], strict=True)
    ]
    return merged.reset_index(drop=True)


def _span(values: pd.Series) -> str:
    """``3`` or ``10 to 15``: the range of whole numbers ``values``."""
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low} to {high}"


def _cells_scope(side: LedgerSide) -> str:
    """Where a ledger's primary cells were judged: dimensions, budgets, seeds."""
    cells = _primary(side.ledger, "cell")
    if cells.empty:
        return "no cells"
    dims = sorted({int(d) for d in cells["d"].dropna()})
    calls = (
        " (black-box calls on the molecule tasks)"
        if (cells["group"] == side.spec.molecule_benchmark).any()
        else ""
    )
    return (
        f"{len(cells)} cells at d = {', '.join(map(str, dims))}; "
        f"{_span(cells['evaluations'].dropna())} evaluations{calls}; "
        f"{_span(cells['n_seeds'].dropna())} paired seeds"
    )


def _tally(agree: pd.Series) -> str:
    """``D decided in both: A agree, B differ, C opposite; U undecided on a side``."""
    count = agree.value_counts()
    decided = int(count.get("yes", 0) + count.get("no", 0) + count.get("opposite", 0))
    return (
        f"{decided} decided in both: {int(count.get('yes', 0))} agree, "
        f"{int(count.get('no', 0))} differ, {int(count.get('opposite', 0))} opposite (one "
        f"reproduced, the other contradicted); {int(count.get('undecided', 0))} undecided "
        f"on a side (inconclusive there, or not judged)"
    )


def comparison_markdown(first: LedgerSide, second: LedgerSide) -> str:
    """The comparison as a page: what was compared, the verdicts side by side, then the
    records and shared cells where the two decided differently.

    Raises:
        ClaimsError: the ledgers were judged under different decision rules.
    """
    one, two = _labels(first, second)
    cells = shared_cells(first, second)
    records = claim_verdicts(first, second, cells)
    differing = records[records["agree"].isin(["no", "opposite"])]
    redefined = differently_defined(first, second)
    lines = [
        f"# Claims ledgers side by side: {one} and {two}",
        "",
        f"- {one}: `{first.folder / 'claims.csv'}` (registration "
        f"`{first.spec.registration_hash}`): {_cells_scope(first)}",
        f"- {two}: `{second.folder / 'claims.csv'}` (registration "
        f"`{second.spec.registration_hash}`): {_cells_scope(second)}",
        f"- One decision rule (hash `{first.spec.rule.hash}`): {first.spec.rule.describe()}",
        f"- Records defined differently in the two configs: {', '.join(redefined) or 'none'}.",
        "",
        "## Verdicts",
        "",
        "A record's verdict is over all of its cells, and Holm adjusts within each side's own "
        "family, so two records can differ over different cells even where every shared cell "
        "agrees; the shared cells (section below) are the like-for-like part, their budgets "
        "and seeds as given there. Cells: reproduced/contradicted/not-significant/"
        "inconclusive of all the record's cells.",
        "",
        f"Of {len(records)} records, {_tally(records['agree'])}.",
        "",
        *markdown_table(records, missing=""),
        "",
        "## Where they decided differently",
        "",
    ]
    if differing.empty:
        lines.append("No record decided in both has different primary verdicts.")
    for claim_id, scope in zip(differing["claim_id"], differing["scope"], strict=True):
        lines.append(
            f"- {claim_id} ({scope}): {one} {_reason(first, claim_id, scope)}; "
            f"{two} {_reason(second, claim_id, scope)}"
        )
    lines += [
        "",
        "## Shared cells",
        "",
        f"{len(cells)} cells were judged in both (same claim, scope, method, baseline, group, "
        f"problem, d, K and scoring; the budgets and seeds may differ): {_tally(cells['agree'])}.",
        "",
    ]
    decided_differently = cells[cells["agree"].isin(["no", "opposite"])]
    if not decided_differently.empty:
        lines += [
            "The cells decided differently:",
            "",
            *markdown_table(decided_differently, ".3g", missing=""),
            "",
        ]
    return "\n".join(lines)


def _reason(side: LedgerSide, claim_id: str, scope: str) -> str:
    """``verdict: reason`` of one record's primary overall row."""
    overall = _primary(side.ledger, "overall")
    record = overall[(overall["claim_id"] == claim_id) & (overall["scope"] == scope)].iloc[0]
    return f"{record['verdict']}: {record['reason']}"
