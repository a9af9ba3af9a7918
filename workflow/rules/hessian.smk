rule hessian:
    message:
        "Hessian spectra {wildcards.exp}/{wildcards.run}"
    input:
        f"{R}/{{exp}}/train/{{run}}.nc",
    output:
        f"{R}/{{exp}}/hessian/{{run}}.nc",
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
    log:
        f"{R}/logs/{{exp}}/hessian/{{run}}.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/hessian/{{run}}.tsv"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: LAYOUT.hessian_mem_mb(w.exp, w.run, attempt),
        runtime=lambda w: LAYOUT.hessian_runtime(w.exp, w.run),
    retries: 1
    conda:
        "../../environment.yml"
    script:
        "../scripts/hessian.py"
