rule train:
    output:
        f"{R}/{{exp}}/train/{{run}}.nc",
    log:
        f"{R}/logs/{{exp}}/train/{{run}}.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/train/{{run}}.tsv"
    retries: 1
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: LAYOUT.train_mem_mb(w.exp, w.run, attempt),
        runtime=lambda w, attempt: LAYOUT.train_runtime(w.exp, w.run) * attempt,
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
        code=LAYOUT.code("train"),
    message:
        "GD run {wildcards.exp}/{wildcards.run}"
    script:
        "../scripts/train.py"
