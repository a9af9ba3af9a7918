rule aggregate:
    input:
        train=lambda w: LAYOUT.train_files(w.exp),
        hessian=lambda w: LAYOUT.hessian_files(w.exp),
        escape=lambda w: LAYOUT.escape_files(w.exp),
    output:
        f"{R}/{{exp}}/sweep.nc",
    log:
        f"{R}/logs/{{exp}}/aggregate.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/aggregate.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
        code=LAYOUT.code("aggregate"),
    message:
        "Aggregate sweep {wildcards.exp}"
    script:
        "../scripts/aggregate.py"
