rule threshold_cell:
    output:
        f"{R}/thresholds/{{target}}/{{cell}}.nc",
    log:
        f"{R}/logs/thresholds/{{target}}/{{cell}}.log",
    benchmark:
        f"{R}/benchmarks/thresholds/{{target}}/{{cell}}.tsv"
    # long single-process jobs start first, next to the many short train jobs
    priority: 10
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=lambda w, attempt: LAYOUT.threshold_cell_runtime(
            w.target, w.cell, attempt
        ),
    params:
        cfg=lambda w: LAYOUT.threshold_cell_slice(w.target, w.cell),
        code=LAYOUT.code("threshold_cell"),
    message:
        "delta_NN of {wildcards.target}, cell {wildcards.cell}"
    script:
        "../scripts/threshold_cell.py"


rule thresholds:
    input:
        LAYOUT.threshold_cell_files(),
    output:
        f"{R}/thresholds.nc",
    log:
        f"{R}/logs/thresholds.log",
    conda:
        "../../environment.yml"
    params:
        cfg=LAYOUT.thresholds_slice(),
        code=LAYOUT.code("thresholds"),
    message:
        "delta_NN vs delta_alg table"
    script:
        "../scripts/thresholds.py"
