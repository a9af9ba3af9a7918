# Validate the config (defaults filled, errors name the key) and build the path layout.
from pathlib import Path

from deltann.config import workflow_config
from deltann.workflow import Layout

_validated = workflow_config(
    config,
    Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml",
    workflow.configfiles,
)
config.clear()
config.update(_validated)
LAYOUT = Layout(config)
R = config["results_dir"]
BLAS_THREADS = config["blas_threads"]


wildcard_constraints:
    exp="[A-Za-z0-9][A-Za-z0-9_.-]*",
    run="[^/]+",
    fig="[A-Za-z0-9][A-Za-z0-9_.-]*",
    target="[A-Za-z0-9_]+",
    cell="[^/]+",
    part="[A-Za-z0-9_-]+",


localrules:
    aggregate,
    theory,
    thresholds,
    figure,
