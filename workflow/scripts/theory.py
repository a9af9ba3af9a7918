"""Join the parts of an experiment's theory into theory.nc (thin: logic in
deltann.theory.curves)."""

from deltann.io import read_result, write_netcdf
from deltann.runner import run_script
from deltann.theory.curves import combine_parts

run_script(
    snakemake,
    lambda: write_netcdf(
        combine_parts(
            [
                read_result(p, ("th_edge", "delta_nn"), ("reasons",), what="theory")
                for p in snakemake.input
            ],
            snakemake.params.cfg,
        ),
        snakemake.output[0],
    ),
)
