rule aggregate:
    message:
        "Aggregate sweep {wildcards.exp}"
    input:
        train=lambda w: LAYOUT.train_files(w.exp),
        hessian=lambda w: LAYOUT.hessian_files(w.exp),
    output:
        f"{R}/{{exp}}/sweep.nc",
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
    log:
        f"{R}/logs/{{exp}}/aggregate.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../environment.yml"
    script:
        "../scripts/aggregate.py"
