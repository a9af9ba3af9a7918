rule thresholds:
    output:
        f"{R}/thresholds.nc",
    log:
        f"{R}/logs/thresholds.log",
    benchmark:
        f"{R}/benchmarks/thresholds.tsv"
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=120,
    params:
        cfg=LAYOUT.thresholds_slice(),
    message:
        "delta_NN vs delta_alg table"
    script:
        "../scripts/thresholds.py"
