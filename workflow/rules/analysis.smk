"""Tables and figures of one benchmark group, from its validated traces.

Each rule reads the traces and lists their sha256 sidecars as inputs too: a trace that the
check before the DAG quarantined (common.smk) leaves a newer sidecar behind, so the tables and
figures that read it are rebuilt with it. Config text reaches the shell quoted, by :q.
"""


rule tables:
    input:
        traces=benchmark_traces,
        sidecars=lambda wildcards: sidecars(benchmark_traces(wildcards)),
    output:
        [
            table_output(f"{RESULTS}/tables/{{benchmark}}/{name}.{fmt}", name, fmt)
            for name in TABLE_NAMES
            for fmt in TABLE_FORMATS
        ],
    log:
        f"{LOGS}/tables/{{benchmark}}.log",
    benchmark:
        f"{BENCHMARKS_DIR}/tables/{{benchmark}}.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        out_dir=lambda wildcards: f"{RESULTS}/tables/{wildcards.benchmark}",
        reference=config["reference"],
        alpha=config["alpha"],
        seed=config["bootstrap_seed"],
        confidence=config["band_confidence"],
        fixed_budgets=["--fixed-budgets", *config["fixed_budgets"]],
        targets=target_arguments,
    shell:
        "python -m casbo_bench aggregate --out-dir {params.out_dir:q}"
        " --reference {params.reference:q} --alpha {params.alpha:q} --seed {params.seed:q}"
        " --confidence {params.confidence:q} {params.fixed_budgets:q}"
        " {params.targets:q} {input.traces:q} > {log:q} 2>&1"


rule figures:
    input:
        traces=benchmark_traces,
        sidecars=lambda wildcards: sidecars(benchmark_traces(wildcards)),
    output:
        report(
            directory(f"{FIGURES}/{{benchmark}}"),
            patterns=["{figure}.png"],
            caption="../report/figures.rst",
            category="Numerical benchmark",
            subcategory="{benchmark}",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{LOGS}/figures/{{benchmark}}.log",
    benchmark:
        f"{BENCHMARKS_DIR}/figures/{{benchmark}}.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        confidence=config["band_confidence"],
        seed=config["bootstrap_seed"],
        targets=target_arguments,
        title_prefix=lambda wildcards: f"{config['name']} · {wildcards.benchmark}",
    shell:
        "python -m casbo_bench figures --out-dir {output:q} --confidence {params.confidence:q}"
        " --seed {params.seed:q} --title-prefix {params.title_prefix:q} {params.targets:q}"
        " {input.traces:q} > {log:q} 2>&1"
