rule hessian:
    input:
        f"{R}/{{exp}}/train/{{run}}.nc",
    output:
        f"{R}/{{exp}}/hessian/{{run}}.nc",
    log:
        f"{R}/logs/{{exp}}/hessian/{{run}}.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/hessian/{{run}}.tsv"
    retries: 1
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: LAYOUT.hessian_mem_mb(w.exp, w.run, attempt),
        runtime=lambda w, attempt: LAYOUT.hessian_runtime(w.exp, w.run) * attempt,
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
        code=LAYOUT.code("hessian"),
    message:
        "Hessian spectra {wildcards.exp}/{wildcards.run}"
    script:
        "../scripts/hessian.py"
