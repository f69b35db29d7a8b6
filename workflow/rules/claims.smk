"""The claims ledger: CASBO's robustness variants on the benchmark groups, then the ledger.

Config block ``claims`` (workflow/schemas/config.schema.yaml); without it no rule here has
anything to do. Variant runs go to results/<name>/robustness/raw/ (never mixed with the
benchmark's own runs, which the tables aggregate). The resolved claims block goes to
results/<name>/claims_spec.json, the ledger to results/<name>/claims.csv, claims.md and
claims.html (the Markdown as a page, shown inline by the report). Claim
records on the molecule benchmark are judged on its runs (molecules.smk, included before
this file) when the config has a ``molecules`` block, and are inconclusive otherwise.
"""


include: "claims_common.smk"


# Written in Snakemake's own process (no shell, nothing from config reaches a command line);
# a change of the claims block changes params.spec, which reruns this rule and the ledger.
rule claims_spec:
    output:
        spec=CLAIMS_SPEC,
    log:
        f"{LOGS}/claims_spec.log",
    benchmark:
        f"{BENCHMARKS_DIR}/claims_spec.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=200,
        runtime=5,
    params:
        spec=lambda wildcards: claims_spec(),
    run:
        write_claims_spec(params.spec, output.spec, log[0])


rule claims:
    input:
        unpack(claims_inputs),
    output:
        markdown=f"{RESULTS}/claims.md",
        page=report(
            f"{RESULTS}/claims.html",
            caption="../report/claims.rst",
            category="Claims ledger",
            labels={"output": "ledger", "format": REPORT_TABLE_FORMATS["html"]},
        ),
        table=report(
            f"{RESULTS}/claims.csv",
            caption="../report/claims.rst",
            category="Claims ledger",
            labels={"output": "ledger", "format": REPORT_TABLE_FORMATS["csv"]},
        ),
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{BENCHMARKS_DIR}/claims.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        benchmarks=claims_benchmark_arguments,
        rate=lambda wildcards, input: (
            ["--rate-verdicts", input.rate_verdicts] if RATE is not None else []
        ),
    shell:
        "python -m casbo_bench claims --spec {input.spec:q} --out-dir {params.out_dir:q} "
        "{params.benchmarks:q} {params.rate:q} > {log:q} 2>&1"
