"""Published archives: what a finished run found, compact enough for the repository, from which
every table, the claims ledger, the rate-check verdicts and every figure are rebuilt (the
molecule report's tables, score figures and SDF file copied as kept).

:func:`publish` reads ``results/<name>`` and ``paper_figures/<name>`` and writes the archive
(layout in docs/architecture.md, "Published archives"); :func:`check_archive` verifies one
(the sha256 of every file against the manifest, every table and trace against its schema);
:func:`regenerate` rebuilds from an archive alone, with the same builders as the workflow
(:func:`~casbo_bench.analysis.tables.build_tables`, :func:`~casbo_bench.analysis.figures.
make_figures`, :func:`~casbo_bench.analysis.rates.judge_rate_checks`, :func:`~casbo_bench.
analysis.claims.build_ledger`), and never runs an optimizer.

**Why a compact trace is exact.** Every table, verdict and figure depends on a run r
through (a) its step function ``b_r(e)`` = best-so-far after e evaluations, read as the
value of its last row with ``evaluation <= e`` (:func:`~casbo_bench.analysis.views.best_at`,
:func:`~casbo_bench.analysis.figures.convergence_curves`, the ledger's values at a budget);
(b) the first evaluation at which ``b_r`` reaches each target, the first row with
best-so-far ``<= t`` (:mod:`~casbo_bench.analysis.ert`); (c) the loss of evaluation 1 (the
median initial gap of relative targets) and whether any loss is below 0, which is then
``min_e b_r(e) < 0``; (d) run-level values on the last row (budget, evaluations spent,
fresh-sample loss, safeguard events, status) and (e) the count of failed evaluations. A
compact trace keeps evaluation 1, every row where ``b_r`` changes, every failed row and the
last row (:func:`compact_trace`): ``b_r`` is a step function that changes only on kept rows,
so (a) and (b) read the same values, and (c) to (e) are kept rows. The rate check depends on
the runs only through ``R_T`` at its T grid, which the archive keeps exactly
(``rate_checks/gaps.parquet``). The molecule report's grids of best molecules read a run
only through its best structure, which the archive keeps (``molecules/best_structures.
parquet``): they are drawn again. Its tables and SDF file score molecules with the property
predictor and GFN2-xTB, and its score figures cost more to draw than the rest of a rebuild
(their curves would read the kept rows: best-so-far at a cumulative cost changes only
there too): these are kept as written (``kept/``) and copied.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from casbo_bench.config_checks import enabled_block
from casbo_bench.errors import UserFacingError
from casbo_bench.files import sha256_file, write_atomically, write_text_atomically
from casbo_bench.names import MOLECULE_GRID_PREFIX
from casbo_bench.schemas.archive import (
    BEST_STRUCTURE_COLUMNS,
    COMPACT_COLUMNS,
    ArchiveValidationError,
    validate_best_structures,
    validate_compact_trace,
)
from casbo_bench.schemas.trace import COST_COLUMNS, RUN_KEYS

ARCHIVE_FORMAT = 3
"""The layout version written to ``manifest.json`` (3: the molecule report's grids of best
molecules are drawn again from ``molecules/best_structures.parquet``, no longer kept;
2: ``job_hours`` and ``cpu_hours`` with their ``hours_source``; 1 had only ``cpu_hours``,
summed from ``cpu_time``, with ``cpu_hours_source``). :func:`regenerate` reads every format:
whatever an archive lists as kept is copied."""

MANIFEST = "manifest.json"
MOLECULE_GROUP = "molecules"
"""The ledger's name of the molecule benchmark (workflow/rules/claims_common.smk)."""
BEST_STRUCTURES = f"{MOLECULE_GROUP}/best_structures.parquet"
"""An archive's best structure of every complete molecule run (from format 3)."""

COMPACT_RULE = (
    "per run: evaluation 1, every evaluation where best_so_far changes, every failed "
    "evaluation and the last evaluation; columns " + ", ".join(COMPACT_COLUMNS) + ", and on "
    "molecule tasks the cumulative costs " + " and ".join(COST_COLUMNS)
)


class ArchiveError(UserFacingError, ValueError):
    """An archive or a run folder is missing or incomplete; the message names it and the fix."""


def compact_trace(traces: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``traces`` that every analysis reads a value from (module docstring).

    Args:
        traces: validated traces (:func:`casbo_bench.traces.read_trace`), ``n`` rows.

    Returns:
        ``m <= n`` rows with the columns :data:`~casbo_bench.schemas.archive.COMPACT_COLUMNS`
        (and the cost columns ``calls`` and ``denoiser_evals`` where every row has them),
        sorted by run and evaluation: row ``i`` of a run is kept iff it is the run's first or
        last row, ``failed`` is true, or ``best_so_far[i] != best_so_far[i - 1]``.
    """
    ordered = traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable", ignore_index=True)
    run_id = ordered.groupby(list(RUN_KEYS), sort=False).ngroup().to_numpy()
    first = np.r_[True, run_id[1:] != run_id[:-1]]
    last = np.r_[run_id[1:] != run_id[:-1], True]
    best = ordered["best_so_far"].to_numpy(dtype=np.float64)
    changed = np.r_[True, best[1:] != best[:-1]]
    keep = first | last | changed | ordered["failed"].to_numpy(dtype=bool)
    # The molecule tasks' cost columns travel along: best-so-far at a cost is read off the
    # same kept rows (the costs never decrease within a run).
    columns = {**COMPACT_COLUMNS}
    for name, dtype in COST_COLUMNS.items():
        if name in ordered.columns and ordered[name].notna().all():
            columns[name] = dtype
    kept = ordered.loc[keep, list(columns)].reset_index(drop=True)
    return kept.astype(columns)


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(
        path, lambda sink: pq.write_table(table, sink, compression="zstd", compression_level=19)
    )


def _compact_files(
    paths: Sequence[Path], source: str, structures: bool = False
) -> tuple[pd.DataFrame, list[dict[str, Any]], pd.DataFrame | None]:
    """The compact traces of ``paths`` (read and reduced one file at a time), their
    provenance records and, with ``structures``, the best structure of every complete run
    (:data:`~casbo_bench.schemas.archive.BEST_STRUCTURE_COLUMNS`; None without
    ``structures`` or where no run is complete). A run lies in one file (its evaluations
    number from 1 there), so a file's best structures are its runs'."""
    from casbo_bench.traces import read_provenance, read_trace

    if structures:
        from casbo_bench.analysis.molecules import best_molecules
    frames, best, records = [], [], []
    for path in paths:
        trace = read_trace(path)
        frames.append(compact_trace(trace))
        found = best_molecules(trace) if structures else pd.DataFrame()
        if not found.empty:  # a file whose runs all failed has none
            best.append(found[list(BEST_STRUCTURE_COLUMNS)])
        records.append(read_provenance(path))
    frame = pd.concat(frames, ignore_index=True).sort_values(
        [*RUN_KEYS, "evaluation"], kind="stable", ignore_index=True
    )
    frame = validate_compact_trace(frame, source)
    if not best:
        return frame, records, None
    ordered = pd.concat(best, ignore_index=True).sort_values(list(RUN_KEYS), ignore_index=True)
    return frame, records, validate_best_structures(ordered.astype(BEST_STRUCTURE_COLUMNS), source)


def _benchmark_hours(results: Path, column: str) -> float | None:
    """The sum of ``column`` (seconds) over every Snakemake benchmark file under
    ``results/benchmarks``, in hours, or None when no file has it."""
    files = sorted((results / "benchmarks").rglob("*.tsv"))
    seconds = [
        float(pd.read_csv(path, sep="\t")[column].fillna(0.0).sum())
        for path in files
        if column in pd.read_csv(path, sep="\t", nrows=0).columns
    ]
    return sum(seconds) / 3600.0 if seconds else None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _provenance_summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def distinct(key: str) -> list[Any]:
        return sorted({str(record.get(key)) for record in records if record.get(key) is not None})

    # A machine is its host, OS and hardware; the load and thread count change per job.
    varying = ("load_average", "torch_threads")
    machines = sorted(
        {
            json.dumps(
                {
                    "host": record.get("host"),
                    "os": record.get("os"),
                    **{k: v for k, v in record.get("device", {}).items() if k not in varying},
                },
                sort_keys=True,
            )
            for record in records
        }
    )
    times = distinct("time_utc")
    return {
        "config_hashes": distinct("config_hash"),
        "registration_hashes": distinct("claims_rule_hash"),
        "run_commits": distinct("git_commit"),
        "machines": [json.loads(machine) for machine in machines],
        "first_job_utc": times[0] if times else None,
        "last_job_utc": times[-1] if times else None,
    }


def _kept_files(results: Path, figures: Path, rate_check: bool) -> dict[str, Path]:
    """Archive path -> source of what the archive keeps as written (the rate check's files
    only where the config runs one: a folder left by an earlier config is not this run's)."""
    kept: dict[str, Path] = {}
    for path in sorted((results / "tables").rglob("*.csv")):
        kept[f"tables/{path.relative_to(results / 'tables')}"] = path
    for name in ("claims.csv", "claims.md", "claims_spec.json", "config.yaml"):
        if (results / name).is_file():
            kept[name] = results / name
    for name in ("verdicts.csv", "local_slopes.csv", "calibration.csv") if rate_check else ():
        if (results / "rate_checks" / name).is_file():
            kept[f"rate_checks/{name}"] = results / "rate_checks" / name
    # Rebuilt only with the predictor and xTB, or slow to draw: kept as is.
    molecule_tables = results / "tables" / MOLECULE_GROUP
    for path in sorted(molecule_tables.glob("*")) if molecule_tables.is_dir() else []:
        kept[f"kept/tables/{MOLECULE_GROUP}/{path.name}"] = path
    for path in sorted((figures / MOLECULE_GROUP).glob("*")):
        # Not Snakemake's .snakemake_timestamp of the folder, nor the grids (drawn again).
        if not path.name.startswith((".", MOLECULE_GRID_PREFIX)):
            kept[f"kept/figures/{MOLECULE_GROUP}/{path.name}"] = path
    sdf = results / MOLECULE_GROUP / "best_molecules.sdf"
    if sdf.is_file():
        kept[f"kept/{MOLECULE_GROUP}/best_molecules.sdf"] = sdf
    return kept


def _group_names(config: Mapping[str, Any]) -> list[str]:
    return [str(benchmark["name"]) for benchmark in config.get("benchmarks", [])]


def read_config(path: Path) -> dict[str, Any]:
    """The resolved config at ``path`` (``results/<name>/config.yaml``)."""
    if not path.is_file():
        raise ArchiveError(
            f"{path} does not exist; publish a finished run (the workflow writes its resolved "
            f"config there)"
        )
    config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return config


def publish(results: Path, figures: Path, out: Path) -> Path:
    """Write the archive of the finished run ``results`` (with its figures ``figures``) to
    ``out``; returns the manifest's path.

    Raises:
        ArchiveError: ``results`` lacks its config or a group's traces, or ``out`` is not empty.
        TraceFileError, TraceValidationError: a trace is missing or invalid.
        ArchiveValidationError: a compact trace fails its schema (a run in two files).
    """
    started = time.perf_counter()
    config = read_config(results / "config.yaml")
    if out.exists() and any(out.iterdir()):
        raise ArchiveError(f"{out} is not empty; give a new folder to --out or remove it")
    written: dict[str, Path] = {}
    records: list[dict[str, Any]] = []
    runs = 0
    sources = {name: results / "raw" / name for name in _group_names(config)}
    for name, folder in sources.items():
        files = sorted(folder.glob("*/*.parquet"))
        if not files:
            raise ArchiveError(
                f"{folder} holds no traces of group {name}; run the workflow to the end first"
            )
        own, own_records, _ = _compact_files(files, f"{folder}/*/*.parquet")
        written[f"traces/{name}.parquet"] = _write_parquet(own, out / "traces" / f"{name}.parquet")
        records += own_records
        runs += len(own.drop_duplicates(list(RUN_KEYS)))
        variants = sorted((results / "robustness" / "raw" / name).glob("*/*.parquet"))
        if variants:
            frame, variant_records, _ = _compact_files(variants, f"robustness/raw/{name}")
            path = out / "traces" / f"{name}.variants.parquet"
            written[f"traces/{name}.variants.parquet"] = _write_parquet(frame, path)
            records += variant_records
            runs += len(frame.drop_duplicates(list(RUN_KEYS)))
    molecule_files = sorted((results / MOLECULE_GROUP / "raw").glob("*/*.parquet"))
    if molecule_files:
        frame, molecule_records, structures = _compact_files(
            molecule_files, f"{MOLECULE_GROUP}/raw", structures=True
        )
        path = out / "traces" / f"{MOLECULE_GROUP}.parquet"
        written[f"traces/{MOLECULE_GROUP}.parquet"] = _write_parquet(frame, path)
        if structures is not None:
            written[BEST_STRUCTURES] = _write_parquet(structures, out / BEST_STRUCTURES)
        records += molecule_records
        runs += len(frame.drop_duplicates(list(RUN_KEYS)))
    rate_check = enabled_block(config, "rate_check") is not None
    if rate_check:
        from casbo_bench.analysis.rates import read_typed_csv
        from casbo_bench.schemas.claims import GAP_COLUMNS, validate_gaps

        gaps_csv = results / "rate_checks" / "gaps.csv"
        if not gaps_csv.is_file():
            raise ArchiveError(f"{gaps_csv} does not exist; run the rate check first")
        # The gaps again from the traces (Parquet keeps every bit a CSV may round), in the
        # order of the run's gaps.csv (the order of the rule's inputs, which the verdicts and
        # the figures follow).
        recorded = read_typed_csv(gaps_csv, GAP_COLUMNS)
        keys = [*RUN_KEYS, "T"]
        gaps = recorded[keys].merge(_rate_gaps(results, config), on=keys, how="left")
        gaps = validate_gaps(gaps[list(GAP_COLUMNS)].astype(GAP_COLUMNS), str(gaps_csv))
        if len(gaps) != len(recorded) or not np.allclose(
            gaps["gap"], recorded["gap"], rtol=1e-12, atol=0.0
        ):
            raise ArchiveError(
                f"{gaps_csv} differs from the gaps of {results}/rate_checks/raw; rerun the "
                f"rate check before publishing"
            )
        path = out / "rate_checks" / "gaps.parquet"
        written["rate_checks/gaps.parquet"] = _write_parquet(gaps, path)
    for name, source in _kept_files(results, figures, rate_check).items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written[name] = target
    config_file = out / "config.yaml"
    manifest = {
        "format": ARCHIVE_FORMAT,
        "name": config["name"],
        "label": f"{config['name']} (published archive of results/{config['name']})",
        "config": "config.yaml",
        "config_sha256": sha256_file(config_file),
        **_provenance_summary(records),
        "published_commit": _git_commit(),
        "published_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "published_on": platform.node(),
        "job_hours": _benchmark_hours(results, "s"),
        "cpu_hours": _benchmark_hours(results, "cpu_time"),
        "hours_source": "Snakemake benchmark files results/<name>/benchmarks/**/*.tsv; "
        "job_hours: the jobs' summed wall seconds (s), their CPU-hours as every job uses one "
        "thread but train_edm (2; it runs only where a config trains its own model); "
        "cpu_hours: cpu_time, "
        "which Snakemake samples every 30 s after a job's first 15 s, so a lower bound; null "
        "where the run wrote none",
        "runs": runs,
        "compact_traces": COMPACT_RULE,
        "exact": "tables, ledger, rate verdicts and figures are rebuilt exactly, the molecule "
        "grids from best_structures.parquet; the molecule tables, score figures and SDF file "
        "are kept (docs/architecture.md, Published archives)",
        "kept_as_written": sorted(name for name in written if name.startswith("kept/")),
        "publish_seconds": round(time.perf_counter() - started, 1),
        "files": {name: sha256_file(path) for name, path in sorted(written.items())},
    }
    return write_text_atomically(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def _rate_gaps(results: Path, config: Mapping[str, Any]) -> pd.DataFrame:
    from casbo_bench.analysis.rates import average_gaps_of_files
    from casbo_bench.traces import read_provenance

    files = sorted((results / "rate_checks" / "raw").glob("*/*.parquet"))
    if not files:
        raise ArchiveError(f"{results}/rate_checks/raw holds no traces; run the rate check first")
    iterations = [int(t) for t in config["rate_check"]["iterations"]]
    return average_gaps_of_files(files, iterations, read_provenance)


def read_manifest(archive: Path) -> dict[str, Any]:
    """The manifest of ``archive``.

    Raises:
        ArchiveError: no archive or no readable manifest there.
    """
    path = archive / MANIFEST
    if not path.is_file():
        published = ", ".join(
            sorted(
                str(found.parent)
                for found in archive.parent.glob(f"*/{MANIFEST}")
                if found.is_file()
            )
        )
        raise ArchiveError(
            f"{path} does not exist; give a folder written by 'casbo-bench publish'"
            + (f" (here: {published})" if published else "")
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArchiveError(f"{path} is not valid JSON ({error}); publish the run again") from None
    return manifest


def read_compact(archive: Path, name: str) -> pd.DataFrame:
    """The compact trace ``traces/<name>.parquet`` of ``archive``, validated."""
    path = archive / "traces" / f"{name}.parquet"
    return validate_compact_trace(_read_parquet(path), str(path))


def read_best_structures(archive: Path) -> pd.DataFrame:
    """The best structures :data:`BEST_STRUCTURES` of ``archive``, validated."""
    path = archive / BEST_STRUCTURES
    return validate_best_structures(_read_parquet(path), str(path))


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise ArchiveValidationError(
            f"{path} is not a readable Parquet file ({error}); publish the run again"
        ) from None


def check_archive(archive: Path) -> dict[str, Any]:
    """Verify ``archive``: every file of the manifest present with its sha256, no file
    missing from the manifest, every compact trace, table, verdict and the ledger valid.

    Returns:
        The manifest.

    Raises:
        ArchiveError: no manifest.
        ArchiveValidationError: a file is missing, changed, unlisted or fails its schema;
            the message names it.
    """
    from casbo_bench.analysis import claims, rates
    from casbo_bench.schemas.claims import GAP_COLUMNS, validate_gaps
    from casbo_bench.schemas.tables import validate_table

    manifest = read_manifest(archive)
    listed: dict[str, str] = manifest.get("files", {})
    for name, digest in listed.items():
        path = archive / name
        if not path.is_file():
            raise ArchiveValidationError(
                f"{path} is missing; restore it (git checkout) or publish again"
            )
        if sha256_file(path) != digest:
            raise ArchiveValidationError(
                f"{path} differs from the sha256 in {archive / MANIFEST} (changed or "
                f"damaged); restore it (git checkout) or publish again"
            )
    present = {str(path.relative_to(archive)) for path in archive.rglob("*") if path.is_file()} - {
        MANIFEST
    }
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise ArchiveValidationError(
            f"{archive} holds files its manifest does not list: {', '.join(unlisted)}; "
            f"remove them or publish again"
        )
    molecules = None  # the molecule runs' compact trace, which the structures must match
    for name in listed:
        path = archive / name
        if name.startswith("traces/"):
            stem = Path(name).name.removesuffix(".parquet")
            compact = read_compact(archive, stem)
            molecules = compact if stem == MOLECULE_GROUP else molecules
        elif name.startswith("tables/") and path.parent.name != MOLECULE_GROUP:
            table = path.stem
            if table != "rate_checks":
                validate_table(table, pd.read_csv(path))
        elif name == "rate_checks/verdicts.csv":
            rates.read_verdicts(path)
        elif name == "rate_checks/gaps.parquet":
            validate_gaps(pd.read_parquet(path).astype(GAP_COLUMNS), str(path))
        elif name == "claims.csv":
            claims.read_ledger(path)
    _check_best_structures(archive, manifest, molecules)
    return manifest


def _check_best_structures(
    archive: Path, manifest: Mapping[str, Any], molecules: pd.DataFrame | None
) -> None:
    """From format 3 an archive with complete molecule runs (``molecules``: its validated
    compact trace, if it has one) keeps the best structure of each, and of no other run:
    the molecule grids are drawn from them."""
    from casbo_bench.schemas.trace import complete_runs

    listed = BEST_STRUCTURES in manifest.get("files", {})
    runs = set()
    if molecules is not None:
        complete = complete_runs(molecules)
        runs = set(complete[list(RUN_KEYS)].drop_duplicates().itertuples(index=False))
    if not listed:
        if runs and int(manifest.get("format", 0)) >= 3:
            raise ArchiveValidationError(
                f"{archive / BEST_STRUCTURES} is missing from an archive of format 3 with "
                f"{len(runs)} complete molecule runs; publish the run again"
            )
        return
    kept = set(read_best_structures(archive)[list(RUN_KEYS)].itertuples(index=False))
    if kept != runs:
        raise ArchiveValidationError(
            f"{archive / BEST_STRUCTURES} holds {len(kept - runs)} run(s) that are no complete "
            f"run of traces/{MOLECULE_GROUP}.parquet and lacks {len(runs - kept)} that are; "
            f"publish the run again"
        )


def analysis_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The tables' and figures' settings of a resolved config, as the workflow's rules
    ``tables`` and ``figures`` pass them (workflow/rules/analysis.smk)."""
    from casbo_bench.analysis.ert import TargetRule

    targets = (
        TargetRule.absolute(config["targets"])
        if "targets" in config
        else TargetRule.relative(config["target_fractions"])
    )
    return {
        "reference": config["reference"],
        "alpha": float(config["alpha"]),
        "seed": int(config["bootstrap_seed"]),
        "confidence": float(config["band_confidence"]),
        "fixed_budgets": tuple(config["fixed_budgets"]),
        "targets": targets,
    }


def _rate_rule(rule: Mapping[str, Any]) -> Any:
    """The rate rule of a resolved config's ``rate_check.rule`` (rule ``rate_check``'s
    arguments, workflow/rules/rates_common.smk)."""
    from casbo_bench.analysis.rates import RateRule

    calibration = rule["calibration"]
    return RateRule(
        t_tolerance=float(rule["t_tolerance"]),
        d_tolerance=float(rule["d_tolerance"]),
        bound_factor=float(rule["bound_factor"]),
        confidence=float(rule["confidence"]),
        n_resamples=int(rule["resamples"]),
        seed=int(rule["seed"]),
        steepening_confidence=float(rule["steepening_confidence"]),
        floor_tolerance=float(rule["floor_tolerance"]),
        calibration_replicates=int(calibration["replicates"]),
        calibration_t_exponents=tuple(float(a) for a in calibration["t_exponents"]),
        calibration_d_exponents=tuple(float(b) for b in calibration["d_exponents"]),
    )


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def regenerate(
    archive: Path, results_out: Path, figures_out: Path, processes: int | None = None
) -> list[Path]:
    """Rebuild every table, the rate check, the ledger and every figure of ``archive`` into
    ``results_out`` (tables/, rate_checks/, claims.*) and ``figures_out`` (one folder per
    group, rate_checks/ and molecules/), and copy what it keeps as written (the molecule
    report's tables, score figures and SDF file; an archive of format 2 keeps its grids
    too). Nothing runs an optimizer.

    The pieces are independent and share ``processes`` worker processes (default: every
    usable core): each group's tables and figures, the molecule grids, the rate check, then
    its figures in one share per worker, while this process builds the ledger.
    Every piece draws from its own named seed, so the files do not depend on how many
    processes ran them.

    Raises:
        ArchiveError, ArchiveValidationError: as :func:`check_archive`, which runs first.
    """
    from casbo_bench.analysis import claims

    manifest = check_archive(archive)
    config = read_config(archive / manifest["config"])
    workers = processes or usable_cores()
    written: list[Path] = []
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_one_thread_each)
    try:
        rate_check = (
            pool.submit(_regenerate_rate_check, archive, config, results_out)
            if (archive / "rate_checks" / "gaps.parquet").is_file()
            else None
        )
        group_pieces = [
            pool.submit(_regenerate_group, archive, config, name, results_out, figures_out)
            for name in _group_names(config)
        ]
        if (archive / BEST_STRUCTURES).is_file():
            group_pieces.append(
                pool.submit(_regenerate_molecule_grids, archive, figures_out / MOLECULE_GROUP)
            )
        rate_figures = []
        verdicts = None
        if rate_check is not None:
            rate_written, gaps, verdicts, slopes = rate_check.result()
            written += rate_written
            rate_figures = [
                pool.submit(
                    _regenerate_rate_figures,
                    gaps,
                    verdicts.iloc[share::workers],
                    slopes,
                    figures_out / "rate_checks",
                    str(config["name"]),
                )
                for share in range(min(workers, len(verdicts)))
            ]
        if (archive / "claims_spec.json").is_file():
            spec = claims.read_spec(archive / "claims_spec.json")
            ledger = claims.build_ledger(
                spec, _ledger_groups(archive, config), rate_verdicts=verdicts
            )
            written += claims.write_ledger(ledger, results_out, spec)
        for piece in [*group_pieces, *rate_figures]:
            written += piece.result()
    except BaseException:
        # Fail now: the queued pieces are dropped rather than finished first.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    for name in manifest.get("kept_as_written", []):
        relative = Path(name).relative_to("kept")
        base = figures_out if relative.parts[0] == "figures" else results_out
        inner = Path(*relative.parts[1:]) if relative.parts[0] == "figures" else relative
        target = base / inner
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive / name, target)
        written.append(target)
    return written


def _one_thread_each() -> None:
    """A worker's numerical libraries run on one thread: the workers already share out the
    cores, and more threads than cores only slow them down. The variables reach libraries a
    worker loads later (a spawned worker has loaded none yet), threadpoolctl those a forked
    one inherited loaded."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _regenerate_group(
    archive: Path, config: Mapping[str, Any], name: str, results_out: Path, figures_out: Path
) -> list[Path]:
    """One benchmark group's tables and figures (a worker's piece of :func:`regenerate`)."""
    from casbo_bench.analysis import figures, tables

    settings = analysis_settings(config)
    own = read_compact(archive, name)
    built = tables.build_tables(
        own,
        reference=settings["reference"],
        targets=settings["targets"],
        alpha=settings["alpha"],
        seed=settings["seed"],
        fixed_budgets=settings["fixed_budgets"],
        confidence=settings["confidence"],
    )
    return tables.write_tables(built, results_out / "tables" / name) + figures.make_figures(
        own,
        figures_out / name,
        seed=settings["seed"],
        confidence=settings["confidence"],
        targets=settings["targets"],
        title_prefix=f"{config['name']} · {name}",
    )


def _regenerate_molecule_grids(archive: Path, out_dir: Path) -> list[Path]:
    """The molecule report's grids of best molecules (a worker's piece of
    :func:`regenerate`)."""
    from casbo_bench.analysis import molecules

    best = read_best_structures(archive)
    return molecules.write_grids(best, molecules.rebuild_best(best), out_dir)


def _regenerate_rate_check(
    archive: Path, config: Mapping[str, Any], results_out: Path
) -> tuple[list[Path], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rate check's verdicts, local slopes and calibration, judged again from the kept
    gaps for the checks the run judged: the written paths, the gaps, verdicts and slopes."""
    from casbo_bench.analysis import rates
    from casbo_bench.schemas.claims import GAP_COLUMNS

    gaps = pd.read_parquet(archive / "rate_checks" / "gaps.parquet").astype(GAP_COLUMNS)
    recorded = rates.read_verdicts(archive / "rate_checks" / "verdicts.csv")
    identities = recorded[["method", "problem", "role", "expectation", "variant_of"]]
    checks = [
        rates.RateCheck(*map(str, row))
        for row in identities.drop_duplicates().itertuples(index=False)
    ]
    results = rates.judge_rate_checks(gaps, checks, _rate_rule(config["rate_check"]["rule"]))
    written = rates.write_rate_outputs(
        results, gaps, results_out / "rate_checks", results_out / "tables"
    )
    return written, gaps, results.verdicts, results.local_slopes


def _regenerate_rate_figures(
    gaps: pd.DataFrame,
    verdicts: pd.DataFrame,
    slopes: pd.DataFrame,
    out_dir: Path,
    title_prefix: str,
) -> list[Path]:
    """The rate figures of ``verdicts`` (a worker's share)."""
    from casbo_bench.analysis import rate_figures

    return rate_figures.make_rate_figures(gaps, verdicts, slopes, out_dir, title_prefix)


def _ledger_groups(archive: Path, config: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The traces the ledger judges: each group with its variants' runs, and the molecule
    tasks that count as claims."""
    groups: dict[str, pd.DataFrame] = {}
    for name in _group_names(config):
        own = read_compact(archive, name)
        variants = archive / "traces" / f"{name}.variants.parquet"
        groups[name] = (
            pd.concat([own, read_compact(archive, f"{name}.variants")], ignore_index=True)
            if variants.is_file()
            else own
        )
    if (archive / "traces" / f"{MOLECULE_GROUP}.parquet").is_file():
        from casbo_bench.molecules.tasks import claim_problems

        # As the workflow does: a task marked count_in_claims: false is no claim cell.
        molecules = read_compact(archive, MOLECULE_GROUP)
        counted = claim_problems((enabled_block(config, "molecules") or {}).get("tasks", []))
        if counted:
            groups[MOLECULE_GROUP] = molecules[molecules["problem"].isin(counted)]
    return groups
