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


# Jobs of several runs (config key batch.runs > 1): see train.smk.
for _i, (_exp, _bid, _runs) in enumerate(LAYOUT.batches("escape")):

    rule:
        name:
            f"escape_batch_{_i}"
        output:
            [f"{R}/{_exp}/escape/{r}.nc" for r in _runs],
        log:
            f"{R}/logs/{_exp}/escape_batch/{_bid}.log",
        benchmark:
            f"{R}/benchmarks/{_exp}/escape_batch/{_bid}.tsv"
        retries: 1
        conda:
            "../../environment.yml"
        threads: BLAS_THREADS
        resources:
            mem_mb=LAYOUT.batch_mem("escape", _exp, _runs),
            runtime=LAYOUT.batch_time("escape", _exp, _runs),
        params:
            cfg=LAYOUT.exp_slice(_exp),
            runs=_runs,
            code=LAYOUT.code("escape"),
        message:
            f"Escape predictor batch {_exp}/{_bid}: {len(_runs)} runs"
        script:
            "../scripts/escape_batch.py"
