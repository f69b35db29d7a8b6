"""Config checks and input functions of claims.smk (included by it).

Every label a claim record names is checked against the config here, before any job runs;
the records' own structure is checked by casbo_bench.registration, the code the ledger reads
them with.
"""

from casbo_bench.registration import ClaimsError, ClaimsSpec

CLAIMS = config_block("claims")
VARIANTS = {variant["label"]: variant for variant in (CLAIMS or {}).get("variants", [])}
# The molecule benchmark's traces enter the ledger as this group (molecules.smk reserves the
# name, so no benchmark group can take it).
MOLECULE_GROUP = "molecules"
CLAIMS_SPEC = f"{RESULTS}/claims_spec.json"


def stand_ins():
    """Method -> the method whose runs stand in for it at K = 1 (``methods[*].on_plain``)."""
    return {label: method["on_plain"] for label, method in METHODS.items() if "on_plain" in method}


def claim_records():
    """The config's claim records, a comparison without ``groups`` covering every benchmark
    group (so one list of records serves configs with different groups)."""
    return [
        (
            record
            if record.get("kind", "comparison") == "rate" or "groups" in record
            else {**record, "groups": list(BENCHMARKS)}
        )
        for record in CLAIMS["claims"]
    ]


def claims_spec():
    """The ledger's spec (casbo_bench.registration.ClaimsSpec), resolved from config."""
    return {
        "config": f"{config['name']} ({CONFIG_PATH})",
        "reference": config["reference"],
        "rule": CLAIMS["rule"],
        "claims": claim_records(),
        "variants": list(VARIANTS),
        "stand_ins": stand_ins(),
        "molecule_benchmark": MOLECULE_GROUP,
        "results_dir": RESULTS,
        "figures_dir": FIGURES,
        "registered": {
            "variants": [VARIANTS[label] for label in sorted(VARIANTS)],
            "variant_benchmarks": CLAIMS.get("variant_benchmarks", []),
            "rate_rule": (RATE or {}).get("rule"),
        },
    }


def write_claims_spec(spec, path, log):
    """Write ``spec`` (:func:`claims_spec`) as JSON to ``path``, and one line to ``log``."""
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(spec, stream, indent=2, sort_keys=True)
        stream.write("\n")
    with open(log, "w", encoding="utf-8") as stream:
        stream.write(f"wrote {path}: {len(spec['claims'])} claim records, rule {RULE_HASH}\n")


def _groups_run():
    """Benchmark group -> the method labels it runs (the molecule benchmark's included)."""
    groups = {name: set(benchmark_methods(benchmark)) for name, benchmark in BENCHMARKS.items()}
    if MOLECULES is not None:
        groups[MOLECULE_GROUP] = set(molecule_methods())
    return groups


def _check_claim_records(spec):
    """Every group and label of the records is the config's, and every compared method runs."""
    groups = _groups_run()
    run = set().union(*groups.values())
    known_groups = sorted({*BENCHMARKS, MOLECULE_GROUP})
    for record in spec.records:
        if record.kind == "rate":
            if RATE is not None and record.method not in RATE_METHODS:
                refuse(
                    f"claim {record.title} names rate method {record.method!r}; use "
                    f"one of rate_check.methods {sorted(RATE_METHODS)}"
                )
            continue
        unknown = sorted(set(record.groups) - set(known_groups))
        if unknown:
            refuse(
                f"claim {record.title} names unknown benchmark group(s) {unknown}; use "
                f"{known_groups}"
            )
        unknown = [label for label in record.labels if label not in METHODS]
        if unknown:
            refuse(
                f"claim {record.title} compares unknown method(s) {unknown}; define "
                f"them under 'methods' first"
            )
        if not any(group in groups for group in record.groups):
            continue  # its groups are not run here: the ledger calls it inconclusive
        idle = [
            label
            for label in record.labels
            if label not in run and spec.stand_ins.get(label) not in run
        ]
        if idle:
            refuse(
                f"claim {record.title} compares {idle}, which no benchmark group runs; "
                f"add them to a group's methods or drop them from the claim"
            )


def _check_claims_config():
    """Cross-field checks of ``claims`` the JSON schema cannot express, each with its fix;
    the resolved ClaimsSpec (None without a ledger)."""
    if CLAIMS is None:
        return None
    if "claims" not in CLAIMS:
        refuse(
            "claims lacks its claim records (claims.claims); give them, or write "
            "claims: {enabled: false} for no ledger"
        )
    if len(VARIANTS) != len(CLAIMS.get("variants", [])):
        refuse("two claims variants share a label; give each a unique label")
    clash = sorted(set(VARIANTS) & set(METHODS))
    if clash:
        refuse(
            f"claims variant label(s) {clash} are also method labels; a variant "
            f"needs its own label"
        )
    for label, variant in VARIANTS.items():
        if variant["variant_of"] != config["reference"]:
            refuse(
                f"claims variant {label!r} is a variant of {variant['variant_of']!r}; "
                f"the ledger re-derives the reference's verdicts, so use variant_of: "
                f"{config['reference']}"
            )
    named = [*CLAIMS.get("variant_benchmarks", [])]
    named += [name for variant in VARIANTS.values() for name in variant.get("benchmarks", [])]
    unknown = sorted(set(named) - set(BENCHMARKS))
    if unknown:
        refuse(
            f"claims names unknown benchmark group(s) {unknown}; use one of "
            f"{sorted(BENCHMARKS)}"
        )
    try:
        spec = ClaimsSpec.from_mapping(claims_spec())
    except ClaimsError as error:
        refuse(f"claims: {error}")
    _check_claim_records(spec)
    return spec


_SPEC = _check_claims_config()
# The ledger judges only traces run under what it pre-registers: every job records this hash
# (ClaimsSpec.registration_hash: the rule, the records, the variants, the rate check's rule).
RULE_HASH = None if _SPEC is None else _SPEC.registration_hash


def _variant_jobs():
    """Register the ledger's CASBO variants on the benchmark groups they run on (under
    results/<name>/robustness/, never mixed with the groups' own runs); group -> traces."""
    traces = {}
    for name, benchmark in BENCHMARKS.items():
        labels = [label for label, variant in VARIANTS.items() if name in variant_groups(variant)]
        traces[name] = benchmark_jobs(
            benchmark, [VARIANTS[label] for label in labels], f"robustness/raw/{name}"
        )
    return traces


def variant_groups(variant):
    """The benchmark groups a variant runs on: its own list, else variant_benchmarks."""
    return variant.get("benchmarks", CLAIMS.get("variant_benchmarks", []))


VARIANT_TRACES = _variant_jobs() if CLAIMS is not None else {name: [] for name in BENCHMARKS}


def group_traces(name):
    """The benchmark's own traces of group ``name``, then its variants'."""
    return BENCHMARK_TRACES[name] + VARIANT_TRACES[name]


def claims_benchmark_arguments(wildcards):
    """``--benchmark GROUP FILE...`` for every group with traces, one list item per word."""
    groups = {name: group_traces(name) for name in BENCHMARKS}
    if MOLECULE_CLAIM_TRACES:
        groups[MOLECULE_GROUP] = MOLECULE_CLAIM_TRACES
    return [word for name, files in groups.items() for word in ("--benchmark", name, *files)]


def claims_inputs(wildcards):
    inputs = {
        "spec": CLAIMS_SPEC,
        "traces": [path for name in BENCHMARKS for path in group_traces(name)]
        + MOLECULE_CLAIM_TRACES,
    }
    inputs["sidecars"] = sidecars(inputs["traces"])
    if RATE is not None:
        inputs["rate_verdicts"] = f"{RATE_DIR}/verdicts.csv"
    return inputs


def claims_outputs():
    """The ledger for `rule all` (none without a ``claims`` block)."""
    if CLAIMS is None:
        return []
    return [f"{RESULTS}/claims.md", f"{RESULTS}/claims.html", f"{RESULTS}/claims.csv"]
