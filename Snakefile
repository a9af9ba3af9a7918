# deltann: GD on multi-index data -> Hessian spectra -> sweep.nc -> figures.
# Run: snakemake --cores 2   (config.yaml);  snakemake --cores 2 --configfile configs/ci.yaml
from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default; a --configfile given on the command line replaces it (instead of
# being merged into it, which would mix experiments and figures of both files).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/hessian.smk"
include: "workflow/rules/escape.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/thresholds.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        LAYOUT.all_targets(),
