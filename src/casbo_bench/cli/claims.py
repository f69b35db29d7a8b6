"""``casbo-bench claims``: the claims ledger from the resolved spec and the traces."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import UsageError, writable_folder

NAME = "claims"
HELP = "Write the claims ledger (claims.csv, claims.md, claims.html) from the spec and traces."
DESCRIPTION = (
    "Write the claims ledger (claims.csv, claims.md, claims.html): a verdict for every claim "
    "record of the spec (the config's claims block, resolved by the workflow), by its "
    "pre-registered rule; traces run under another rule are refused."
)
EXAMPLES = (
    "casbo-bench claims --spec results/default/claims_spec.json --out-dir results/default "
    "--benchmark plain results/default/raw/plain/*/*.parquet --benchmark sequential "
    "results/default/raw/sequential/*/*.parquet --rate-verdicts "
    "results/default/rate_checks/verdicts.csv",
    "casbo-bench claims --spec spec.json --out-dir out --benchmark sequential seq/*.parquet "
    "robust/*.parquet --benchmark molecules molecules/raw/*/*.parquet",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spec",
        required=True,
        type=Path,
        help="claims_spec.json: the rule, the claim records, variants, stand-ins, config label",
    )
    parser.add_argument(
        "--out-dir",
        required=True,
        type=writable_folder("claims"),
        help="folder of claims.csv, claims.md and claims.html",
    )
    parser.add_argument(
        "--benchmark",
        action="append",
        nargs="+",
        default=[],
        metavar="GROUP FILE.parquet",
        help="a benchmark group: its name, then its trace files (variants' included); repeatable",
    )
    parser.add_argument(
        "--rate-verdicts", type=Path, help="verdicts.csv of 'casbo-bench rates' (optional)"
    )


def handle(arguments: argparse.Namespace) -> int:

    from casbo_bench.analysis import claims, rates
    from casbo_bench.schemas.claims import ClaimsValidationError
    from casbo_bench.traces import load_traces, read_provenance

    if not arguments.benchmark:
        raise UsageError(
            "give at least one --benchmark GROUP FILE...; see 'casbo-bench claims --help'"
        )
    groups: dict[str, list[Path]] = {}
    for name, *files in arguments.benchmark:
        if not files:
            raise UsageError(f"--benchmark {name} lists no trace files; give GROUP FILE...")
        if name in groups:
            raise UsageError(f"--benchmark {name} is given twice; give each group once")
        groups[name] = [Path(file) for file in files]
    try:
        spec = claims.read_spec(arguments.spec)
        benchmarks = {name: load_traces(files) for name, files in groups.items()}
        claims.check_registration(
            {str(path): read_provenance(path) for files in groups.values() for path in files},
            spec.registration_hash,
        )
        verdicts = rates.read_verdicts(arguments.rate_verdicts) if arguments.rate_verdicts else None
        ledger = claims.build_ledger(spec, benchmarks, rate_verdicts=verdicts)
    except (claims.ClaimsError, ClaimsValidationError) as error:
        raise UsageError(str(error)) from None
    written = claims.write_ledger(ledger, arguments.out_dir, spec)
    overall = ledger[(ledger["row"] == "overall") & (ledger["variant_of"] == "")]
    for row in overall.itertuples(index=False):
        logger.info(
            "%s (%s, %s): %s: %s", row.claim_id, row.scope, row.source, row.verdict, row.reason
        )
    logger.info("wrote %s", ", ".join(map(str, written)))
    return 0
