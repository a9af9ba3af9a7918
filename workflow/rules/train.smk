# One job per run (rule `train`, wildcards exp and run) or, with config key batch.runs > 1, one
# rule `train_batch_<i>` per job of several runs (Layout.batches; no wildcards, so Snakemake takes
# it over `train` for those files). All come from this one template (Layout.job_rules): the same
# script, params and code, so changing batch.runs reruns nothing, and every file is the one a job
# of its own writes (deltann.batched); a killed job is redone whole.
for _r in LAYOUT.job_rules("train"):

    rule:
        name:
            _r.name
        input:
            _r.input,
        output:
            _r.output,
        log:
            _r.log,
        benchmark:
            _r.benchmark
        retries: 1
        conda:
            "../../environment.yml"
        threads: BLAS_THREADS
        resources:
            mem_mb=_r.mem_mb,
            runtime=_r.runtime,
        params:
            cfg=_r.cfg,
            stack=config["batch"]["stack"],
            code=LAYOUT.code("train"),
        message:
            _r.message
        script:
            "../scripts/train.py"
