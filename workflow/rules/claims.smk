"""The claims ledger: CASBO's robustness variants on the benchmark groups, then the ledger.

Config block ``claims`` (workflow/schemas/config.schema.yaml); without it no rule here has
anything to do. Variant runs go to results/<name>/robustness/raw/ (never mixed with the
benchmark's own runs, which the tables aggregate), the ledger to results/<name>/claims.csv
and claims.md. The molecule claim is judged on the molecule benchmark's runs (molecules.smk,
included before this file) when the config has a ``molecules`` block.
"""


include: "claims_common.smk"


rule run_claims_variant:
    output:
        trace=f"{RESULTS}/robustness/raw/{{benchmark}}/{{method}}/{{problem}}_d{{d}}_K{{K}}_{{scoring}}_s{{chunk}}.parquet",
    log:
        f"{LOGS}/robustness/{{benchmark}}/{{method}}/{{problem}}_d{{d}}_K{{K}}_{{scoring}}_s{{chunk}}.log",
    conda:
        "../envs/benchmark.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
        gpu=lambda wildcards: gpus_for(VARIANTS[wildcards.method]["optimizer"] in TORCH_OPTIMIZERS),
    params:
        arguments=variant_run_arguments,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "python -m casbo_bench run {params.arguments} --out {output.trace} > {log} 2>&1"


rule claims:
    input:
        claims_inputs,
    output:
        markdown=f"{RESULTS}/claims.md",
        table=report(
            f"{RESULTS}/claims.csv",
            caption="../report/claims.rst",
            category="Claims ledger",
            labels={"output": "ledger"},
        ),
    log:
        f"{LOGS}/claims.log",
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        arguments=lambda wildcards: claims_arguments(),
    shell:
        "python -m casbo_bench claims --out-dir {params.out_dir} {params.arguments} > {log} 2>&1"
