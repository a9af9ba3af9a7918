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


# Batched runs (config key batch.runs > 1): one rule per job of several runs, whose outputs are
# the run files above. These rules have no wildcards, so Snakemake takes them over `train` for
# those files; every file is the one `train` writes (deltann.batched); a killed job is redone
# whole. Layout.batches says which runs go together.
for _i, (_exp, _bid, _runs) in enumerate(LAYOUT.batches("train")):

    rule:
        name:
            f"train_batch_{_i}"
        output:
            [f"{R}/{_exp}/train/{r}.nc" for r in _runs],
        log:
            f"{R}/logs/{_exp}/train_batch/{_bid}.log",
        benchmark:
            f"{R}/benchmarks/{_exp}/train_batch/{_bid}.tsv"
        retries: 1
        conda:
            "../../environment.yml"
        threads: BLAS_THREADS
        resources:
            mem_mb=LAYOUT.batch_mem("train", _exp, _runs),
            runtime=LAYOUT.batch_time("train", _exp, _runs),
        params:
            cfg=LAYOUT.exp_slice(_exp),
            runs=_runs,
            stack=config["batch"]["stack"],
            code=LAYOUT.code("train"),
        message:
            f"GD batch {_exp}/{_bid}: {len(_runs)} runs"
        script:
            "../scripts/train_batch.py"
