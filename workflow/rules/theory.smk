rule theory:
    output:
        f"{R}/{{exp}}/theory.nc",
    log:
        f"{R}/logs/{{exp}}/theory.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/theory.tsv"
    # long single-process jobs start first, next to the many short train jobs
    priority: 10
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=lambda w, attempt: LAYOUT.theory_runtime(w.exp) * attempt,
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
        code=LAYOUT.code("theory"),
    message:
        "Theory curves {wildcards.exp}"
    script:
        "../scripts/theory.py"


rule trajectory:
    output:
        f"{R}/{{exp}}/trajectory.nc",
    log:
        f"{R}/logs/{{exp}}/trajectory.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/trajectory.tsv"
    # long single-process jobs start first, next to the many short train jobs
    priority: 10
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=lambda w, attempt: LAYOUT.trajectory_runtime(w.exp) * attempt,
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
        code=LAYOUT.code("trajectory"),
    message:
        "Second-phase trajectory {wildcards.exp}"
    script:
        "../scripts/trajectory.py"
