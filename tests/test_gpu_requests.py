"""The workflow's GPU requests: exactly the torch jobs ask for one, and only with device cuda.

A dry run of the tiny config (no GPU needed) prints every job with its resources; the
SLURM executor turns a job's ``gpu`` into ``--gpus``. ``device: auto`` must ask for none:
it uses a GPU where the node has one, and a request would hold the job forever on a
cluster without GPUs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.snakemake_runs import TINY_CONFIG, run_snakemake

# Asked for by name besides `all`: the training rules (and the data rule they need).
TRAINING_TARGETS = ("train_edm", "train_property_predictor")
# Rules that never import torch: they declare no GPU at all.
NO_TORCH = {
    "tables",
    "figures",
    "rate_check",
    "claims_spec",
    "claims",
    "molecule_data",
    "resolved_config",
    "all",
}

_HEADER = re.compile(r"^(?:local)?rule (\w+):$")
_FIELD = re.compile(r"^    (\w+): (.*)$")


@dataclass
class Job:
    rule: str
    wildcards: dict[str, str]
    gpu: int | None
    shell: str


def parse_jobs(output: str) -> list[Job]:
    """The jobs of a ``--dry-run --printshellcmds`` listing, in order."""
    jobs: list[Job] = []
    fields: dict[str, str] = {}
    rule: str | None = None

    def close(shell: str = "") -> None:
        if rule is None:
            return
        wildcards = dict(
            part.split("=", 1) for part in fields.get("wildcards", "").split(", ") if part
        )
        gpu = re.search(r"(?:^|, )gpu=(\d+)(?:,|$)", fields.get("resources", ""))
        jobs.append(Job(rule, wildcards, int(gpu.group(1)) if gpu else None, shell))

    for line in output.splitlines():
        header = _HEADER.match(line)
        field = _FIELD.match(line)
        if header:
            close()
            rule, fields = header.group(1), {}
        elif rule is not None and field:
            fields[field.group(1)] = field.group(2)
        elif rule is not None and line.startswith("Shell command: "):
            close(line.removeprefix("Shell command: "))
            rule = None
    close()
    return jobs


def _dry_run(workdir: Path, config: dict[str, Any]) -> list[Job]:
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run_snakemake(
        workdir, "--dry-run", "--printshellcmds", "all", *TRAINING_TARGETS, timeout=120
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    jobs = parse_jobs(result.stdout)
    assert jobs, result.stdout[-4000:]
    return jobs


def _config(device: str) -> dict[str, Any]:
    """tiny.yaml on ``device``, with a claims variant and an EDM training kept on the CPU."""
    config = yaml.safe_load(TINY_CONFIG.read_text(encoding="utf-8"))
    assert "molecules" in config, "tiny.yaml lost its molecules block; this test needs it"
    config["device"] = device
    config["claims"]["variant_benchmarks"] = ["plain"]
    config["claims"]["variants"] = [
        {
            "label": "casbo-rank",
            "optimizer": "casbo",
            "options": {"normalization": "rank"},
            "variant_of": "casbo",
        }
    ]
    config["molecules"]["training"] = {"device": "cpu"}
    return config


@pytest.fixture(scope="module")
def cuda_jobs(tmp_path_factory: pytest.TempPathFactory) -> list[Job]:
    return _dry_run(tmp_path_factory.mktemp("cuda"), _config("cuda"))


def test_parser_reads_a_job_block() -> None:
    listing = (
        "rule run:\n"
        "    output: x.parquet\n"
        "    wildcards: job=raw/plain/casbo/sphere_d2_K1_final_s0\n"
        "    resources: tmpdir=/tmp, runtime=60, gpu=1, mem_mb=2000, mem=2 GB\n"
        "Shell command: python -m casbo_bench run --device cuda\n"
        "\n"
        "localrule all:\n"
        "    input: x.parquet\n"
        "    resources: tmpdir=/tmp\n"
    )
    first, last = parse_jobs(listing)
    assert (first.rule, first.wildcards["job"], first.gpu) == (
        "run",
        "raw/plain/casbo/sphere_d2_K1_final_s0",
        1,
    )
    assert first.shell.endswith("--device cuda")
    assert (last.rule, last.gpu) == ("all", None)


RUN_KINDS = {
    "raw": "benchmark",
    "robustness": "claims variant",
    "rate_checks": "rate check",
    "molecules": "molecules",
}
"""The first folder of a run's trace path (rule run's ``job`` wildcard) -> what it runs."""


def runs_by_kind(jobs: list[Job]) -> dict[str, list[tuple[str, Job]]]:
    """Rule run's jobs by what they run, each with its method label (the trace's folder)."""
    kinds: dict[str, list[tuple[str, Job]]] = {}
    for job in jobs:
        if job.rule == "run":
            parts = job.wildcards["job"].split("/")
            kinds.setdefault(RUN_KINDS[parts[0]], []).append((parts[-2], job))
    return kinds


def test_with_cuda_exactly_the_torch_jobs_ask_for_a_gpu(cuda_jobs: list[Job]) -> None:
    by_rule: dict[str, list[Job]] = {}
    for job in cuda_jobs:
        by_rule.setdefault(job.rule, []).append(job)
    expected_rules = {"run", "molecule_report", *TRAINING_TARGETS, *NO_TORCH}
    assert expected_rules <= set(by_rule), sorted(expected_rules - set(by_rule))
    runs = runs_by_kind(cuda_jobs)
    assert set(runs) == set(RUN_KINDS.values()), sorted(runs)
    torch_methods = {"casbo", "casbo-decay", "casbo-rank"}  # optimizer casbo
    for kind in ("benchmark", "rate check", "claims variant"):
        for method, job in runs[kind]:
            assert method in torch_methods | {"random"}, (kind, method)
            if method in torch_methods:
                assert job.gpu == 1, (kind, job.wildcards)
            else:
                assert not job.gpu, (kind, job.wildcards)
    for kind in ("benchmark", "rate check"):
        assert {method for method, _ in runs[kind]} >= {"random"}, kind
    # The sampler and the predictor are torch whatever the optimizer.
    assert all(job.gpu == 1 for _, job in runs["molecules"])
    for rule in ("molecule_report", "train_property_predictor"):
        assert all(job.gpu == 1 for job in by_rule[rule]), rule
    (report,) = by_rule["molecule_report"]
    assert "--device cuda" in report.shell
    (predictor,) = by_rule["train_property_predictor"]
    assert "--device cuda" in predictor.shell
    # The EDM training's own device (cpu) wins over the config's.
    (edm,) = by_rule["train_edm"]
    assert edm.gpu == 0 and "--device cpu" in edm.shell
    for rule in NO_TORCH:
        assert all(job.gpu is None for job in by_rule[rule]), rule


def test_with_auto_no_job_asks_for_a_gpu(tmp_path: Path) -> None:
    jobs = _dry_run(tmp_path, _config("auto"))
    assert {"benchmark", "molecules"} <= set(runs_by_kind(jobs))
    assert "molecule_report" in {job.rule for job in jobs}
    asking = [(job.rule, job.wildcards) for job in jobs if job.gpu]
    assert not asking, asking
