rule escape:
    output:
        f"{R}/{{exp}}/escape/{{run}}.nc",
    log:
        f"{R}/logs/{{exp}}/escape/{{run}}.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/escape/{{run}}.tsv"
    retries: 1
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: LAYOUT.train_mem_mb(w.exp, w.run, attempt),
        runtime=lambda w, attempt: LAYOUT.escape_runtime(w.exp, w.run) * attempt,
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
        code=LAYOUT.code("escape"),
    message:
        "Escape predictor {wildcards.exp}/{wildcards.run}"
    script:
        "../scripts/escape.py"
