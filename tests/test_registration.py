"""What the ledger pre-registers: the rule and its hash, claim records, the spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from casbo_bench.registration import (
    RULE_DEFAULTS,
    ClaimRecord,
    ClaimsError,
    ClaimsRule,
    ClaimsSpec,
    Comparison,
    SecondaryBudget,
    claims_rule_hash,
    read_spec,
)

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def test_the_hash_fills_the_defaults_and_ignores_how_numbers_are_written() -> None:
    written_out = {**RULE_DEFAULTS, "min_effect": 0.3}
    assert claims_rule_hash({}) == claims_rule_hash(written_out) == ClaimsRule().hash
    assert claims_rule_hash({"min_effect": 1}) == claims_rule_hash({"min_effect": 1.0})
    digits = claims_rule_hash({})
    assert len(digits) == 16 and int(digits, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"alpha": 0.01},
        {"min_seeds": 12},
        {"min_effect": 0.5},
        {"min_fraction": 0.75},
        {"rate_min_seeds": 6},
        {"secondary_budgets": ["10d"]},
    ],
)
def test_every_entry_of_the_rule_changes_its_hash(change: dict[str, Any]) -> None:
    assert claims_rule_hash(change) != claims_rule_hash({})


def test_the_defaults_are_the_config_schemas() -> None:
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    rule = schema["properties"]["claims"]["properties"]["rule"]["properties"]
    assert {key: entry["default"] for key, entry in rule.items()} == RULE_DEFAULTS


def test_the_module_imports_only_the_standard_library() -> None:
    # The workflow imports it to hash the rule before any job; it must stay that light.
    code = (
        "import sys, casbo_bench.registration; "
        "print(sorted({'numpy', 'pandas', 'pandera', 'scipy', 'torch'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"alhpa": 0.05}, r"unknown key\(s\) \['alhpa'\]"),
        ({"alpha": 1.5}, "alpha must lie strictly between 0 and 1"),
        ({"min_fraction": 0.0}, "min_fraction must lie in"),
        ({"min_seeds": 1}, "must be >= 2"),
        ({"min_seeds": 2.5}, "min_seeds must be an integer"),
        ({"alpha": "small"}, "not a number"),
        ({"secondary_budgets": ["10x"]}, "neither 'Nd'"),
        ({"secondary_budgets": "10d"}, "must be a list"),
        ({"secondary_budgets": ["10d", "10d"]}, "lists a budget twice"),
    ],
)
def test_a_bad_rule_is_refused_with_its_fix(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ClaimsError, match=message):
        claims_rule_hash(rule)


def test_secondary_budgets_are_multiples_of_d_or_counts_never_above_the_budget() -> None:
    per_d, fixed = SecondaryBudget.parse("10d"), SecondaryBudget.parse(200)
    assert (per_d.label, fixed.label) == ("10d", "200")
    assert per_d.evaluations(d=4, compared=300) == 40
    assert per_d.evaluations(d=40, compared=300) == 300
    assert fixed.evaluations(d=4, compared=100) == 100
    rule = ClaimsRule.from_mapping({"secondary_budgets": ["10d", 200]})
    assert rule.as_mapping()["secondary_budgets"] == ["10d", 200]
    assert "Secondary budgets (10d, 200" in rule.describe()


def test_the_rule_says_what_it_decides() -> None:
    text = ClaimsRule().describe()
    for phrase in ("two-sided", "contradicted iff", "mixed otherwise", "over ALL their cells"):
        assert phrase in text
    assert ClaimsRule(min_fraction=0.3).cells_needed(10) == 3
    assert ClaimsRule(min_fraction=0.5).cells_needed(7) == 4


# --- claim records and the spec -------------------------------------------------------------

COMPARISON = {
    "id": "beats-cmaes",
    "scope": "matched",
    "source": "paper",
    "sentence": "CASBO reaches better target scores than CMA-ES.",
    "groups": ["plain", "sequential"],
    "comparisons": [
        {"method": "casbo", "baselines": ["cmaes-joint"]},
        {"method": "casbo-latent", "baselines": ["cmaes"], "steps": "sequential"},
    ],
}
RATE = {
    "id": "rate",
    "kind": "rate",
    "scope": "paper",
    "source": "paper",
    "sentence": "The rate.",
    "method": "casbo-decay",
}


def test_records_are_read_as_written() -> None:
    record = ClaimRecord.from_mapping(COMPARISON)
    assert (record.kind, record.title) == ("comparison", "beats-cmaes (matched)")
    assert record.labels == ("casbo", "cmaes-joint", "casbo-latent", "cmaes")
    assert record.comparisons[1] == Comparison("casbo-latent", ("cmaes",), "sequential")
    rate = ClaimRecord.from_mapping(RATE)
    assert (rate.kind, rate.labels, rate.groups) == ("rate", ("casbo-decay",), ())


def test_steps_select_cells_by_k() -> None:
    assert Comparison("a", ("b",)).covers(1) and Comparison("a", ("b",)).covers(5)
    assert Comparison("a", ("b",), "plain").covers(1)
    assert not Comparison("a", ("b",), "plain").covers(5)
    assert Comparison("a", ("b",), "sequential").covers(5)
    assert not Comparison("a", ("b",), "sequential").covers(1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scope": "cell"}, "scope 'cell' is not one of paper, matched, ablation"),
        ({"source": "them"}, "source 'them' is not one of paper, ours"),
        ({"kind": "vote"}, "kind 'vote' is not one of comparison, rate"),
        ({"sentence": " "}, "the sentence is empty"),
        ({"comparisons": []}, "comparisons is empty"),
        ({"groups": "plain"}, "groups must be a non-empty list"),
        ({"method": "casbo"}, "method belongs to rate claims"),
        ({"comparisons": [{"method": "casbo", "baselines": ["casbo"]}]}, "compared with itself"),
        ({"comparisons": [{"method": "casbo", "baselines": ["x"], "steps": "K>1"}]}, "steps"),
        ({"colour": "red"}, r"unknown key\(s\) \['colour'\]"),
    ],
)
def test_a_bad_comparison_record_names_itself_and_the_fix(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClaimsError, match=r"claim beats-cmaes \(.*\)"):
        ClaimRecord.from_mapping({**COMPARISON, **change})
    with pytest.raises(ClaimsError, match=message):
        ClaimRecord.from_mapping({**COMPARISON, **change})


def test_a_rate_record_has_a_method_and_no_comparisons() -> None:
    with pytest.raises(ClaimsError, match="drop its groups and comparisons"):
        ClaimRecord.from_mapping({**RATE, "groups": ["plain"]})
    without = {key: value for key, value in RATE.items() if key != "method"}
    with pytest.raises(ClaimsError, match=r"lacks \['method'\]"):
        ClaimRecord.from_mapping(without)


def spec_mapping(**change: Any) -> dict[str, Any]:
    return {
        "config": "claims (config/claims.yaml)",
        "reference": "casbo",
        "rule": {"secondary_budgets": ["10d"]},
        "claims": [COMPARISON, RATE],
        "variants": ["casbo-rank"],
        "stand_ins": {"cmaes-joint": "cmaes"},
        "molecule_benchmark": "molecules",
        **change,
    }


def test_the_spec_round_trips_through_its_json_file(tmp_path: Path) -> None:
    path = tmp_path / "claims_spec.json"
    path.write_text(json.dumps(spec_mapping()))
    spec = read_spec(path)
    assert spec.rule.hash == claims_rule_hash({"secondary_budgets": ["10d"]})
    assert [record.title for record in spec.records] == ["beats-cmaes (matched)", "rate (paper)"]
    assert spec.stand_ins == {"cmaes-joint": "cmaes"} and spec.variants == ("casbo-rank",)
    assert (spec.results_dir, spec.figures_dir) == ("results/claims", "paper_figures/claims")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"claims": [COMPARISON, COMPARISON]}, r"\['beats-cmaes \(matched\)'\] appear twice"),
        ({"claims": []}, "the claims list is empty"),
        ({"variants": ["casbo"]}, "differ from the reference 'casbo'"),
        ({"stand_ins": {"a": "b", "b": "c"}}, "through another stand-in"),
        ({"rule": {"alpha": 2}}, "alpha must lie"),
        ({"extra": 1}, r"unknown key\(s\) \['extra'\]"),
    ],
)
def test_a_bad_spec_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ClaimsError, match=message):
        ClaimsSpec.from_mapping(spec_mapping(**change))


def test_a_missing_or_broken_spec_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClaimsError, match="does not exist; the workflow writes it"):
        read_spec(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ClaimsError, match="is not JSON"):
        read_spec(broken)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(spec_mapping(reference="CASBO!")))
    with pytest.raises(ClaimsError, match=r"bad\.json: reference has malformed label"):
        read_spec(bad)
