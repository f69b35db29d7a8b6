"""COCO's own post-processing: cocopp over every COCO observer folder of the config.

The bbob jobs of the benchmark groups write COCO's data format, one folder per job under
results/<name>/coco/<method>/ (rule run_coco, run.smk). Rule cocopp hands all of them to
`casbo-bench cocopp`, which runs cocopp offline (no data archive, the network closed) into
results/<name>/cocopp/: index.html, runtime ECDFs, aRT tables with dispersion. The report
holds the whole folder and opens at cocopp's index.html.
"""


rule cocopp:
    input:
        folders=lambda wildcards: sorted(COCO_FOLDERS),
        sidecars=lambda wildcards: sidecars(sorted(COCO_FOLDERS.values())),
    output:
        report(
            directory(COCOPP_OUTPUT),
            htmlindex="index.html",
            caption="../report/cocopp.rst",
            category="bbob (COCO)",
            labels={"view": "cocopp's pages"},
        ),
    log:
        f"{LOGS}/cocopp.log",
    benchmark:
        f"{BENCHMARKS_DIR}/cocopp.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "python -m casbo_bench cocopp --out-dir {output:q} {input.folders:q} > {log:q} 2>&1"
