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


# Jobs of several runs (config key batch.runs > 1): see train.smk.
for _i, (_exp, _bid, _runs) in enumerate(LAYOUT.batches("hessian")):

    rule:
        name:
            f"hessian_batch_{_i}"
        input:
            [f"{R}/{_exp}/train/{r}.nc" for r in _runs],
        output:
            [f"{R}/{_exp}/hessian/{r}.nc" for r in _runs],
        log:
            f"{R}/logs/{_exp}/hessian_batch/{_bid}.log",
        benchmark:
            f"{R}/benchmarks/{_exp}/hessian_batch/{_bid}.tsv"
        retries: 1
        conda:
            "../../environment.yml"
        threads: BLAS_THREADS
        resources:
            mem_mb=LAYOUT.batch_mem("hessian", _exp, _runs),
            runtime=LAYOUT.batch_time("hessian", _exp, _runs),
        params:
            cfg=LAYOUT.exp_slice(_exp),
            runs=_runs,
            code=LAYOUT.code("hessian"),
        message:
            f"Hessian spectra batch {_exp}/{_bid}: {len(_runs)} runs"
        script:
            "../scripts/hessian_batch.py"
