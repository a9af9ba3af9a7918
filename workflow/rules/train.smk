rule train:
    message:
        "GD run {wildcards.exp}/{wildcards.run}"
    output:
        f"{R}/{{exp}}/train/{{run}}.nc",
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
    log:
        f"{R}/logs/{{exp}}/train/{{run}}.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/train/{{run}}.tsv"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: LAYOUT.train_mem_mb(w.exp, w.run, attempt),
        runtime=lambda w: LAYOUT.train_runtime(w.exp, w.run),
    retries: 1
    conda:
        "../../environment.yml"
    script:
        "../scripts/train.py"
