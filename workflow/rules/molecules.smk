"""The molecule benchmark: every method on the molecule tasks, then tables, figures, SDF.

Config block ``molecules`` (workflow/schemas/config.schema.yaml; docs/molecules.md); without
it no rule here has anything to do. Runs go to results/<name>/molecules/raw/, the tables to
results/<name>/tables/molecules/, the figures to paper_figures/<name>/molecules/, the best
structures to results/<name>/molecules/best_molecules.sdf.

The stored checkpoints (models/edm_qm9_heavy, models/property_predictor) are inputs marked
ancient(): a fresh clone's newer files never trigger a rerun, and no rule of `all` trains.
The training rules run only when asked for by name (`snakemake train_edm`,
`snakemake train_property_predictor`) and rewrite the stored folders from scratch.
"""


include: "molecules_common.smk"


# paper_figures/<name>/molecules would also match rule figures' {benchmark} folder.
ruleorder: molecule_report > figures


rule run_molecule_benchmark:
    input:
        checkpoint=ancient(f"{MOLECULE_CHECKPOINT}/sampling.pt"),
        predictor=ancient(f"{MOLECULE_PREDICTOR}/predictor.pt"),
    output:
        trace=f"{MOLECULE_DIR}/raw/{{method}}/{{problem}}_d{{d}}_K{{K}}_s{{chunk}}.parquet",
    log:
        f"{LOGS}/molecules/{{method}}/{{problem}}_d{{d}}_K{{K}}_s{{chunk}}.log",
    conda:
        "../envs/molecules.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
        # The sampler and the predictor run on the device whatever the optimizer.
        gpu=gpus_for(True),
    params:
        arguments=molecule_run_arguments,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "python -m casbo_bench run {params.arguments} --out {output.trace} > {log} 2>&1"


rule molecule_report:
    input:
        traces=molecule_traces,
        predictor=ancient(f"{MOLECULE_PREDICTOR}/predictor.pt"),
    output:
        tables=[
            table_output(f"{RESULTS}/tables/molecules/{name}.{fmt}", name, fmt, "Molecules")
            for name in MOLECULE_TABLES
            for fmt in ("csv", "md")
        ],
        figures=report(
            directory(f"{FIGURES}/molecules"),
            patterns=["{figure}.png"],
            caption="../report/molecule_figures.rst",
            category="Molecules",
            labels={"output": "{figure}"},
        ),
        sdf=report(
            f"{MOLECULE_DIR}/best_molecules.sdf",
            caption="../report/molecule_sdf.rst",
            category="Molecules",
            labels={"output": "best structures (SDF)"},
        ),
    log:
        f"{LOGS}/molecules/report.log",
    conda:
        "../envs/molecules.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
        gpu=gpus_for(True),
    params:
        tables_dir=lambda wildcards, output: os.path.dirname(output.tables[0]),
        arguments=lambda wildcards: molecule_report_arguments(),
    shell:
        "OMP_NUM_THREADS={threads} "
        "python -m casbo_bench molecule-report"
        " --tables-dir {params.tables_dir} --figures-dir {output.figures}"
        " --sdf {output.sdf} {params.arguments} {input.traces} > {log} 2>&1"


rule molecule_data:
    output:
        QM9_DATA,
    log:
        "results/data/qm9_heavy.log",
    conda:
        "../envs/molecules.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    shell:
        "python -m casbo_bench qm9 --out {output} > {log} 2>&1"


rule train_edm:
    input:
        data=QM9_DATA,
    output:
        touch(f"{MOLECULE_DIR}/training/edm.done"),
    log:
        f"{LOGS}/molecules/train_edm.log",
    conda:
        "../envs/molecules.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=lambda wildcards: int(60 * (MOLECULES or {}).get("training", {}).get("hours", 24))
        + 30,
        gpu=int(training_device("training") == "cuda"),
    params:
        out=MOLECULE_CHECKPOINT,
        arguments=lambda wildcards: edm_training_arguments(),
    shell:
        "rm -f {params.out}/training_state.pt {params.out}/sampling.pt {params.out}/curve.csv "
        "{params.out}/manifest.json && OMP_WAIT_POLICY=PASSIVE "
        "python -m casbo_bench train-edm"
        " --data {input.data} --out {params.out} {params.arguments} --threads {threads}"
        " --no-progress > {log} 2>&1"


rule train_property_predictor:
    input:
        data=QM9_DATA,
    output:
        touch(f"{MOLECULE_DIR}/training/predictor.done"),
    log:
        f"{LOGS}/molecules/train_property_predictor.log",
    conda:
        "../envs/molecules.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=int(training_device("predictor_training") == "cuda"),
    params:
        out=MOLECULE_PREDICTOR,
        arguments=lambda wildcards: predictor_training_arguments(),
    shell:
        "OMP_WAIT_POLICY=PASSIVE "
        "python -m casbo_bench train-predictor"
        " --data {input.data} --out {params.out} {params.arguments} --threads {threads}"
        " > {log} 2>&1"
