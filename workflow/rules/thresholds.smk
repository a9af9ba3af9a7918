rule threshold_target:
    output:
        f"{R}/thresholds/{{target}}.nc",
    log:
        f"{R}/logs/thresholds/{{target}}.log",
    benchmark:
        f"{R}/benchmarks/thresholds/{{target}}.tsv"
    # long single-process jobs start first, next to the many short train jobs
    priority: 10
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=lambda w, attempt: LAYOUT.thresholds_runtime(w.target) * attempt,
    params:
        cfg=lambda w: LAYOUT.thresholds_slice(w.target),
        code=LAYOUT.code("threshold_target"),
    message:
        "delta_NN vs delta_alg for target {wildcards.target}"
    script:
        "../scripts/threshold_target.py"


rule thresholds:
    input:
        LAYOUT.threshold_target_files(),
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
