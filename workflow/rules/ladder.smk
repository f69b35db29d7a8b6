"""The error ladder of the molecule benchmark's predictor tasks (docs/molecules.md).

For each predictor task of the config's ``molecules`` block (mol-alpha, mol-gap, mol-mu),
rule ladder_molecules draws the baseline rungs (naive, n-atoms, unguided; seeded) and takes
each method's best molecules from the task's traces, and judges every molecule by the
property predictor and by GFN2-xTB mapped to DFT units by the stored calibration
(models/xtb_calibration, written by `casbo-bench calibrate-xtb`). Rule error_ladder writes
results/<name>/tables/molecules/error_ladder.{csv,md,html}. Nothing runs without a
predictor task. Included by the Snakefile after molecules.smk.
"""


include: "ladder_common.smk"


rule ladder_molecules:
    input:
        traces=ladder_traces,
        data=ancient(LADDER_DATA),
        sampler=ancient(f"{MOLECULE_CHECKPOINT}/sampling.pt"),
        predictor=ancient(f"{MOLECULE_PREDICTOR}/predictor.pt"),
        calibration=ancient(f"{LADDER_CALIBRATION}/calibration.json"),
    output:
        molecules=f"{LADDER_DIR}/{{task}}.parquet",
        meta=f"{LADDER_DIR}/{{task}}.json",
    log:
        f"{LOGS}/molecules/ladder_{{task}}.log",
    benchmark:
        f"{BENCHMARKS_DIR}/ladder_molecules/{{task}}.tsv"
    conda:
        "../envs/molecules.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        arguments=ladder_arguments,
    shell:
        "OMP_NUM_THREADS={threads} python -m casbo_bench ladder-molecules"
        " --data {input.data:q} --out {output.molecules:q} {params.arguments:q}"
        " {input.traces:q} > {log:q} 2>&1"


rule error_ladder:
    input:
        molecules=lambda wildcards: [f"{LADDER_DIR}/{task}.parquet" for task in ladder_tasks()],
        meta=lambda wildcards: [f"{LADDER_DIR}/{task}.json" for task in ladder_tasks()],
    output:
        tables=[
            table_output(
                f"{RESULTS}/tables/molecules/error_ladder.{fmt}", "error_ladder", fmt, "Molecules"
            )
            for fmt in LADDER_FORMATS
        ],
    log:
        f"{LOGS}/molecules/error_ladder.log",
    benchmark:
        f"{BENCHMARKS_DIR}/error_ladder.tsv"
    conda:
        "../envs/molecules.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        tables_dir=lambda wildcards, output: os.path.dirname(output.tables[0]),
        arguments=lambda wildcards: [
            *("--methods", *molecule_methods()),
            *("--confidence", config["band_confidence"], "--seed", config["bootstrap_seed"]),
        ],
    shell:
        "python -m casbo_bench error-ladder --tables-dir {params.tables_dir:q}"
        " {params.arguments:q} {input.molecules:q} > {log:q} 2>&1"
