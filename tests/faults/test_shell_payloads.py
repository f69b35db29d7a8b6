"""Shell payloads in every string field of a config: none is ever executed.

Each string field of a valid config (tests/faults/configs/base*.yaml) gets a payload that
would create a file if a shell ever evaluated it. A field either refuses it before any job
(names are checked against the registries, labels against their pattern, ...) or accepts it
as text; the accepted payloads all go into one config that Snakemake then runs for real, and
no payload file may appear.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from casbo_bench.config_checks import ConfigError, check_config, read_config, resolve_config
from tests.snakemake_runs import REPOSITORY, run_snakemake

pytestmark = pytest.mark.fault("shell payload")

CONFIGS = REPOSITORY / "tests" / "faults" / "configs"
SCHEMA = REPOSITORY / "workflow" / "schemas" / "config.schema.yaml"
PAYLOAD = 'x\'; touch PWNED; echo "$(touch PWNED)" `touch PWNED` && touch PWNED #'
"""Would create PWNED if any shell evaluated it, quoted or not, in any quoting style."""


def _base() -> dict[str, Any]:
    """The valid base config with its rate check and ledger, as one mapping."""
    config = read_config(CONFIGS / "base.yaml")
    for extra in ("base-rate.yaml", "base-claims.yaml"):
        block = read_config(CONFIGS / extra)
        config.update({key: block[key] for key in ("rate_check", "claims") if key in block})
    config["name"] = "payloads"
    return config


def _set(path: str) -> Callable[[dict[str, Any]], None]:
    """A setter that puts PAYLOAD at the dotted ``path`` (integers index lists; a trailing
    ``{}`` makes it a mapping key instead of a value)."""

    def put(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if last.endswith("{}"):
            node[PAYLOAD] = node.pop(last[:-2]) if last[:-2] in node else 1
        elif isinstance(node, list):
            node[int(last)] = PAYLOAD
        else:
            node[last] = PAYLOAD

    return put


FIELDS = {
    name: _set(name)
    for name in [
        "name",
        "description",
        "device",
        "reference",
        "methods.0.label",
        "methods.0.optimizer",
        "methods.1.options.popsize",
        "methods.1.options.popsize{}",
        "methods.1.on_plain",
        "benchmarks.0.name",
        "benchmarks.0.description",
        "benchmarks.0.problems.0",
        "benchmarks.0.scoring",
        "benchmarks.0.budget_caps.cmaes{}",
        "rate_check.description",
        "rate_check.scoring",
        "rate_check.methods.0.label",
        "rate_check.methods.0.optimizer",
        "rate_check.methods.0.options.step_schedule",
        "rate_check.methods.0.variant_of",
        "rate_check.checks.0.method",
        "rate_check.checks.0.problems.0",
        "rate_check.checks.0.role",
        "claims.claims.0.id",
        "claims.claims.0.sentence",
        "claims.claims.0.scope",
        "claims.claims.0.comparisons.0.method",
        "molecules.models_dir",
        "extends",
    ]
}


def _with_payload(field: str) -> dict[str, Any]:
    config = copy.deepcopy(_base())
    if field.startswith("molecules."):
        config["molecules"] = {"tasks": [{"name": "mol-qed", "n_atoms": 3}], "budget": 4}
    FIELDS[field](config)
    return config


@pytest.mark.parametrize("field", list(FIELDS))
def test_each_string_field_refuses_or_keeps_its_payload_as_text(
    field: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _with_payload(field)
    try:
        resolved = resolve_config(config, None, read_config)
        check_config(resolved, read_config(SCHEMA))
    except ConfigError as refused:
        assert "\n" not in str(refused)
    assert not (tmp_path / "PWNED").exists()


def _accepted(config: dict[str, Any]) -> bool:
    try:
        check_config(resolve_config(config, None, read_config), read_config(SCHEMA))
    except ConfigError:
        return False
    return True


@pytest.mark.slow
def test_a_real_run_with_every_accepted_payload_executes_none(tmp_path: Path) -> None:
    """Every payload the checks let through as text, in one config that Snakemake runs to the
    end (a payload that only the workflow's own checks refuse, a claim naming a method, is
    left out after its dry run refused it), and a models folder named by the payload, which
    reaches the shell words of the molecule runs and report: quoted by :q, it never runs."""
    (tmp_path / "tests").symlink_to(REPOSITORY / "tests")
    config = _base()
    for field in FIELDS:
        if not _accepted(_with_payload(field)):
            continue
        trial = copy.deepcopy(config)
        FIELDS[field](trial)
        path = tmp_path / "trial.yaml"
        path.write_text(yaml.safe_dump(trial), encoding="utf-8")
        if run_snakemake(tmp_path, "-n", "--configfile", str(path), timeout=300).returncode == 0:
            config = trial
    # A models folder whose name is the payload: it passes the checks (it holds the models)
    # and reaches the command line of every molecule run and of the molecule report.
    models = tmp_path / PAYLOAD
    models.mkdir()
    for name in ("edm_qm9_heavy", "property_predictor"):
        (models / name).symlink_to(REPOSITORY / "models" / name)
    config["molecules"] = {
        "tasks": [{"name": "mol-qed", "n_atoms": 3, "sampler_steps": 2}],
        "budget": 4,
        "fresh_samples": 2,
        "models_dir": str(models),
    }
    path = tmp_path / "payloads.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    dry = run_snakemake(tmp_path, "-n", "-p", "--configfile", str(path), timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "--models-dir" in dry.stdout and "touch PWNED" in dry.stdout
    finished = run_snakemake(tmp_path, "--configfile", str(path), timeout=900)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert not list(tmp_path.rglob("PWNED"))
    assert (tmp_path / "results" / "payloads" / "claims.md").is_file()
    assert list((tmp_path / "results" / "payloads" / "molecules" / "raw").rglob("*.parquet"))
