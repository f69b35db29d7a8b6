"""casbo-bench: re-run the CASBO paper's claims.

    snakemake --cores 2                                  # config/config.yaml, the quick run
    snakemake --cores all --configfile config/paper.yaml # the full grid
    snakemake --cores 2 --configfile config/bbob.yaml    # COCO's bbob, cocopp's HTML

Every output of a config goes under results/<name>/ and paper_figures/<name>/.
"""

from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/rates.smk"
include: "workflow/rules/molecules.smk"
include: "workflow/rules/ladder.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/coco.smk"
# Last: every block above has registered its runs in the job table.
include: "workflow/rules/run.smk"


rule all:
    default_target: True
    input:
        RESOLVED_CONFIG,
        all_outputs(),
        rate_check_outputs(),
        claims_outputs(),
        molecule_outputs(),
        ladder_outputs(),
        coco_outputs(),
