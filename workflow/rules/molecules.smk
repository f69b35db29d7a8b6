"""The molecule benchmark: every method on the molecule tasks, then tables, figures, SDF.

Config block ``molecules`` (workflow/schemas/config.schema.yaml; docs/molecules.md); without
it no rule here has anything to do. Runs go to results/<name>/molecules/raw/, the tables to
results/<name>/tables/molecules/, the figures to paper_figures/<name>/molecules/, the best
structures to results/<name>/molecules/best_molecules.sdf.

The models are read from ``molecules.models_dir`` (default: the stored models/edm_qm9_heavy
and models/property_predictor), inputs marked ancient(): a fresh clone's newer files never
trigger a rerun, and with the stored models no rule of `all` trains. The training rules write
results/<name>/models/ (`snakemake train_edm`, `snakemake train_property_predictor`, or any
run whose models_dir is that folder).
"""


include: "molecules_common.smk"


# paper_figures/<name>/molecules would also match rule figures' {benchmark} folder.
ruleorder: molecule_report > figures


rule molecule_report:
    input:
        traces=MOLECULE_TRACES,
        sidecars=sidecars(MOLECULE_TRACES),
        predictor=ancient(f"{MOLECULE_PREDICTOR}/predictor.pt"),
    output:
        tables=[
            table_output(f"{RESULTS}/tables/molecules/{name}.{fmt}", name, fmt, "Molecules")
            for name in MOLECULE_TABLES
            for fmt in MOLECULE_TABLE_FORMATS
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
    benchmark:
        f"{BENCHMARKS_DIR}/molecule_report.tsv"
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
        " --tables-dir {params.tables_dir:q} --figures-dir {output.figures:q}"
        " --sdf {output.sdf:q} {params.arguments:q} {input.traces:q} > {log:q} 2>&1"


rule molecule_data:
    output:
        QM9_DATA,
    log:
        "results/data/qm9_heavy.log",
    benchmark:
        f"{BENCHMARKS_DIR}/molecule_data.tsv"
    conda:
        "../envs/molecules.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    shell:
        "python -m casbo_bench qm9 --out {output:q} > {log:q} 2>&1"


# Training writes declared outputs under results/<name>/models/ (never over the stored
# models/). Its resume state (training_state.pt) is not an output, so Snakemake never deletes
# it: a stopped training resumes where it was. Point molecules.models_dir at
# results/<name>/models to run the benchmark on freshly trained models (Snakemake then trains
# first).
rule train_edm:
    input:
        data=QM9_DATA,
    output:
        sampler=f"{TRAINED_MODELS}/edm_qm9_heavy/sampling.pt",
        manifest=f"{TRAINED_MODELS}/edm_qm9_heavy/manifest.json",
        curve=f"{TRAINED_MODELS}/edm_qm9_heavy/curve.csv",
    log:
        f"{LOGS}/molecules/train_edm.log",
    benchmark:
        f"{BENCHMARKS_DIR}/train_edm.tsv"
    conda:
        "../envs/molecules.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=lambda wildcards: int(60 * MOLECULES["training"]["hours"]) + 30,
        gpu=int(training_device("training") == "cuda"),
    params:
        out=lambda wildcards, output: os.path.dirname(output.sampler),
        arguments=lambda wildcards: edm_training_arguments(),
    shell:
        "OMP_WAIT_POLICY=PASSIVE python -m casbo_bench train-edm"
        " --data {input.data:q} --out {params.out:q} {params.arguments:q} --threads {threads}"
        " --no-progress > {log:q} 2>&1"


rule train_property_predictor:
    input:
        data=QM9_DATA,
    output:
        predictor=f"{TRAINED_MODELS}/property_predictor/predictor.pt",
        manifest=f"{TRAINED_MODELS}/property_predictor/manifest.json",
        curve=f"{TRAINED_MODELS}/property_predictor/curve.csv",
    log:
        f"{LOGS}/molecules/train_property_predictor.log",
    benchmark:
        f"{BENCHMARKS_DIR}/train_property_predictor.tsv"
    conda:
        "../envs/molecules.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=int(training_device("predictor_training") == "cuda"),
    params:
        out=lambda wildcards, output: os.path.dirname(output.predictor),
        arguments=lambda wildcards: predictor_training_arguments(),
    shell:
        "OMP_WAIT_POLICY=PASSIVE python -m casbo_bench train-predictor"
        " --data {input.data:q} --out {params.out:q} {params.arguments:q} --threads {threads}"
        " > {log:q} 2>&1"
