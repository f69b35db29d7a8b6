"""The d^2/sqrt(T) rate check: the verdicts from runs that record the exact J(theta_t).

Config block ``rate_check`` (workflow/schemas/config.schema.yaml); without it no rule here
has anything to do. Runs go to results/<name>/rate_checks/raw/, the verdicts, local slopes,
calibration and gaps to results/<name>/rate_checks/*.csv, the table to
results/<name>/tables/rate_checks.* and the figures to paper_figures/<name>/rate_checks/.
Its runs are jobs of rule run (run.smk, the job table in common.smk). Config text reaches
the shell quoted: every parameter, path and wildcard by :q.
"""


include: "rates_common.smk"


# paper_figures/<name>/rate_checks would also match rule figures' {benchmark} folder.
ruleorder: rate_check > figures


rule rate_check:
    input:
        traces=RATE_TRACES,
        sidecars=sidecars(RATE_TRACES),
    output:
        verdicts=report(
            f"{RATE_DIR}/verdicts.csv",
            caption="../report/rate_verdicts.rst",
            category="Rate check",
            labels={"output": "verdicts (full rows)"},
        ),
        local_slopes=report(
            f"{RATE_DIR}/local_slopes.csv",
            caption="../report/rate_local_slopes.rst",
            category="Rate check",
            labels={"output": "local slopes per d"},
        ),
        calibration=report(
            f"{RATE_DIR}/calibration.csv",
            caption="../report/rate_calibration.rst",
            category="Rate check",
            labels={"output": "calibration of the rule"},
        ),
        gaps=f"{RATE_DIR}/gaps.csv",
        tables=[
            table_output(f"{RESULTS}/tables/rate_checks.{fmt}", "rate_checks", fmt, "Rate check")
            for fmt in TABLE_FORMATS
        ],
        figures=report(
            directory(f"{FIGURES}/rate_checks"),
            patterns=["{figure}.png"],
            caption="../report/rate_figures.rst",
            category="Rate check",
            labels={"output": "{figure}"},
        ),
    log:
        f"{LOGS}/rate_checks/rate_check.log",
    benchmark:
        f"{BENCHMARKS_DIR}/rate_check.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.verdicts),
        table_dir=lambda wildcards, output: os.path.dirname(output.tables[0]),
        arguments=rate_check_arguments,
        title_prefix=config["name"],
    shell:
        "python -m casbo_bench rates --out-dir {params.out_dir:q} --table-dir {params.table_dir:q}"
        " --figure-dir {output.figures:q} --title-prefix {params.title_prefix:q}"
        " {params.arguments:q} {input.traces:q} > {log:q} 2>&1"
