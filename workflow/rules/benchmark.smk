"""One job: one method on one problem (d, K, scoring) for a group of seeds."""


rule run_benchmark:
    output:
        trace=f"{RESULTS}/raw/{{benchmark}}/{{method}}/{{problem}}_d{{d}}_K{{K}}_{{scoring}}_s{{chunk}}.parquet",
    log:
        f"{LOGS}/raw/{{benchmark}}/{{method}}/{{problem}}_d{{d}}_K{{K}}_{{scoring}}_s{{chunk}}.log",
    conda:
        "../envs/benchmark.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
        gpu=lambda wildcards: gpus_for(METHODS[wildcards.method]["optimizer"] in TORCH_OPTIMIZERS),
    params:
        arguments=run_arguments,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "python -m casbo_bench run {params.arguments} --out {output.trace} > {log} 2>&1"
