"""Tables and figures of one benchmark group, from its validated traces."""


rule tables:
    input:
        benchmark_traces,
    output:
        [
            table_output(f"{RESULTS}/tables/{{benchmark}}/{name}.{fmt}", name, fmt)
            for name in TABLE_NAMES
            for fmt in TABLE_FORMATS
        ],
    log:
        f"{LOGS}/tables/{{benchmark}}.log",
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
        targets=" ".join(str(target) for target in config["targets"]),
    shell:
        "python -m casbo_bench aggregate --out-dir {params.out_dir} --reference {params.reference}"
        " --alpha {params.alpha} --targets {params.targets} {input} > {log} 2>&1"


rule figures:
    input:
        benchmark_traces,
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
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        confidence=config["band_confidence"],
        seed=config["bootstrap_seed"],
    shell:
        "python -m casbo_bench figures --out-dir {output} --confidence {params.confidence} "
        "--seed {params.seed} {input} > {log} 2>&1"
