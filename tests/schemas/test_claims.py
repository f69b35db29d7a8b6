"""The claims parts of the schemas: the ledger (claims.csv) and the config's claims block."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
import yaml

from casbo_bench.analysis.claims import build_ledger
from casbo_bench.registration import ClaimsSpec
from casbo_bench.schemas.claims import (
    CLAIM_COLUMNS,
    ClaimsValidationError,
    claim_columns,
    secondary_labels,
    validate_claims,
)
from tests.analysis.synthetic import synthetic_traces

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _record(claim_id: str, method: str, baseline: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": claim_id,
        "scope": "paper",
        "source": "paper",
        "sentence": f"{method} beats {baseline}.",
        "groups": ["plain"],
        "comparisons": [{"method": method, "baselines": [baseline]}],
        **extra,
    }


@pytest.fixture(scope="module")
def ledger() -> pd.DataFrame:
    """casbo beats cmaes (reproduced); random loses to cmaes (contradicted); casbo-bad, a
    variant of casbo, flips the first; a rate claim not run; secondary budget 2d."""
    traces = synthetic_traces(seeds=tuple(range(12)))
    variant = traces[traces["method"] == "random"].assign(method="casbo-bad")
    spec = ClaimsSpec.from_mapping(
        {
            "config": "test (synthetic)",
            "reference": "casbo",
            "rule": {"secondary_budgets": ["2d"]},
            "claims": [
                _record("beats-cmaes", "casbo", "cmaes"),
                _record("loses", "random", "cmaes", scope="ablation", source="ours"),
                {
                    "id": "rate",
                    "kind": "rate",
                    "scope": "paper",
                    "source": "paper",
                    "sentence": "The rate.",
                    "method": "casbo-decay",
                },
            ],
            "variants": ["casbo-bad"],
        }
    )
    return build_ledger(spec, {"plain": pd.concat([traces, variant], ignore_index=True)})


def test_a_built_ledger_passes_and_has_its_secondary_columns(ledger: pd.DataFrame) -> None:
    validate_claims(ledger)
    assert list(ledger.columns) == list(claim_columns(["2d"]))
    assert secondary_labels(ledger.columns) == ("2d",)
    assert set(CLAIM_COLUMNS) < set(ledger.columns)
    assert {"contradicted", "reproduced"} <= set(ledger["verdict"])


def _where(ledger: pd.DataFrame, **values: str) -> pd.Series:
    mask = pd.Series(True, index=ledger.index)
    for column, value in values.items():
        mask &= ledger[column] == value
    return mask


Breakage = Callable[[pd.DataFrame], pd.DataFrame]


def _set(column: str, value: object, **where: str) -> Breakage:
    def breaking(ledger: pd.DataFrame) -> pd.DataFrame:
        broken = ledger.copy()
        broken.loc[_where(ledger, **where), column] = value
        return broken

    return breaking


@pytest.mark.parametrize(
    ("breaking", "message"),
    [
        (
            _set("p_holm", 0.9, row="cell", verdict="reproduced"),
            "a 'reproduced' cell needs p_holm < alpha and effect >= min_effect",
        ),
        (_set("effect", 1.0, row="cell", verdict="contradicted"), "effect <= -min_effect"),
        (_set("verdict", "not-significant", row="cell", claim_id="beats-cmaes"), "neither"),
        (_set("verdict_2d", "reproduced", row="cell", verdict_2d="contradicted"), "p_holm_2d"),
        (_set("verdict", "not reproduced", claim_id="beats-cmaes"), "column 'verdict'"),
        (_set("verdict", "not-significant", row="overall", claim_id="loses"), "overall rows"),
        (_set("verdict_2d", "reproduced", claim_id="rate"), "empty on rate rows"),
        (
            _set("verdict", "reproduced", row="overall", claim_id="loses", variant_of=""),
            "must have no 'contradicted' cell and the reverse",
        ),
        (_set("p_value", 1.0, row="cell", claim_id="beats-cmaes"), "p_holm >= p_value"),
        (_set("flipped", True, variant_of=""), "only a variant's row can be flipped"),
        (_set("rule_hash", "0123456789abcdef", claim_id="rate"), "the same rule_hash"),
        (_set("rule_hash", "nothex"), "must be 16 hex digits"),
        (_set("source", "ours", row="cell", claim_id="beats-cmaes"), "one source"),
        (_set("scope", "overall", claim_id="rate"), "column 'scope'"),
        (
            lambda ledger: pd.concat([ledger, ledger[ledger["row"] == "overall"].head(1)]),
            "exactly one overall row per method",
        ),
    ],
)
def test_the_schema_rejects_an_inconsistent_ledger(
    ledger: pd.DataFrame, breaking: Breakage, message: str
) -> None:
    broken = breaking(ledger)
    assert not broken.equals(ledger)
    with pytest.raises(ClaimsValidationError, match=message):
        validate_claims(broken)


def test_the_schema_accepts_a_rate_claim_contradicted_by_one_problem(
    ledger: pd.DataFrame,
) -> None:
    # One failing convex problem refutes the rate claim whatever the others give.
    cell = ledger[ledger["claim_id"] == "rate"].iloc[[0, 0, 0]].copy()
    cell["row"] = ["overall", "cell", "cell"]
    cell["verdict"] = ["contradicted", "reproduced", "contradicted"]
    cell["problem"] = ["", "sphere", "ellipsoid"]
    rows = pd.concat([ledger[ledger["claim_id"] != "rate"], cell], ignore_index=True)
    validate_claims(rows.astype(ledger.dtypes.to_dict()))


# --- the config's claims block ---------------------------------------------------------------

EXAMPLE = yaml.safe_load(
    """
claims:
  rule: {alpha: 0.05, min_seeds: 10, min_effect: 0.3, min_fraction: 0.5, rate_min_seeds: 5,
         secondary_budgets: ["10d", 200]}
  claims:
    - {id: rate, kind: rate, scope: paper, source: paper, method: casbo-decay,
       sentence: The rate.}
    - id: beats-cmaes
      scope: matched
      source: paper
      sentence: CASBO reaches better target scores than CMA-ES.
      groups: [plain, sequential]
      comparisons:
        - {method: casbo, baselines: [cmaes-joint]}
        - {method: casbo-latent, baselines: [cmaes], steps: sequential}
  variant_benchmarks: [plain]
  variants:
    - {label: casbo-rank, optimizer: casbo, options: {normalization: rank}, variant_of: casbo}
"""
)


def claims_validator() -> jsonschema.Draft202012Validator:
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema["properties"]["claims"])


def test_the_config_schema_takes_the_example_block() -> None:
    claims_validator().validate(EXAMPLE["claims"])
    claims_validator().validate({"enabled": False})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("rule", "alhpa"), 0.05),
        (("rule", "secondary_budgets"), ["10x"]),
        (("rule", "min_fraction"), 0.0),
        (("claims", 0, "groups"), ["plain"]),  # a rate record with groups
        (("claims", 1, "method"), "casbo"),  # a comparison record with a rate method
        (("claims", 1, "scope"), "overall"),
        (("claims", 1, "comparisons", 1, "steps"), "K>1"),
        (("claims", 1, "comparisons", 0, "baseline"), "cmaes"),
    ],
)
def test_the_config_schema_rejects_a_malformed_block(path: tuple[Any, ...], value: Any) -> None:
    block = copy.deepcopy(EXAMPLE["claims"])
    target = block
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not claims_validator().is_valid(block)


def test_the_config_schema_needs_comparisons_on_a_comparison_record() -> None:
    block = copy.deepcopy(EXAMPLE["claims"])
    del block["claims"][1]["comparisons"]
    assert not claims_validator().is_valid(block)
