"""Rule run: any job of the job table (common.smk), one `casbo-bench run` each.

The benchmark groups, the ledger's CASBO variants, the rate check and the molecule benchmark
all register their runs in ``JOBS`` (trace path -> RunJob); this one rule runs each (as
run_coco, with its COCO observer folder declared, where the job writes one), its
arguments one list item per word, each quoted by :q (config text never reaches the shell
unquoted), writing the trace and its sha256 sidecar (casbo_bench.traces), its model
checkpoints (molecule tasks) as inputs marked ancient() so a fresh clone's newer files never
trigger a rerun.
"""

# Every job is registered by now: check their traces before Snakemake builds the DAG.
protect_traces()


rule run:
    input:
        lambda wildcards: [ancient(path) for path in job_of(wildcards).inputs],
    output:
        trace=f"{RESULTS}/{{job}}.parquet",
        sidecar=f"{RESULTS}/{{job}}.parquet{SIDECAR_SUFFIX}",
    log:
        f"{LOGS}/{{job}}.log",
    benchmark:
        f"{BENCHMARKS_DIR}/{{job}}.tsv"
    wildcard_constraints:
        # The folders the job table's callers register runs in, below results/<name>/.
        job="(" + "|".join(re.escape(folder) for folder in JOB_FOLDERS) + ")/.+",
    conda:
        "../envs/benchmark.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards: job_of(wildcards).mem_mb,
        runtime=lambda wildcards: job_of(wildcards).runtime,
        gpu=lambda wildcards: gpus_for(job_of(wildcards).uses_torch),
    params:
        arguments=lambda wildcards: job_of(wildcards).arguments(),
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "python -m casbo_bench run {params.arguments:q} --out {output.trace:q} > {log:q} 2>&1"


# A benchmark job on a COCO problem (bbob) is rule run with its COCO observer folder declared
# beside the trace: Snakemake removes the folder before the job reruns and reruns the job when
# the folder is gone. Its wildcards name the trace's parts (common.smk, COCO_TRACE), so that
# the folder can sit under coco/<method>/.
use rule run as run_coco with:
    output:
        trace=COCO_TRACE,
        sidecar=f"{COCO_TRACE}{SIDECAR_SUFFIX}",
        coco=directory(COCO_FOLDER),
    log:
        f"{LOGS}/raw/{{benchmark}}/{{method}}/{{problem}}_d{{d}}_K1_final_s{{chunk}}.log",
    benchmark:
        f"{BENCHMARKS_DIR}/raw/{{benchmark}}/{{method}}/{{problem}}_d{{d}}_K1_final_s{{chunk}}.tsv"
    wildcard_constraints:
        problem="|".join(re.escape(name) for name in COCO_PROBLEMS) or NO_MATCH,


ruleorder: run_coco > run


# The config as run: `extends:` expanded, the schema's defaults filled in. Written in
# Snakemake's own process (nothing reaches a shell); a change of the config reruns it.
rule resolved_config:
    output:
        RESOLVED_CONFIG,
    log:
        f"{LOGS}/resolved_config.log",
    benchmark:
        f"{BENCHMARKS_DIR}/resolved_config.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=200,
        runtime=5,
    params:
        config=lambda wildcards: config,
    run:
        write_resolved_config(params.config, output[0], log[0])
