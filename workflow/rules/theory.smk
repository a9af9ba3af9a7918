rule theory_part:
    output:
        f"{R}/{{exp}}/theory_parts/{{part}}.nc",
    log:
        f"{R}/logs/{{exp}}/theory_parts/{{part}}.log",
    benchmark:
        f"{R}/benchmarks/{{exp}}/theory_parts/{{part}}.tsv"
    # long single-process jobs start first, next to the many short train jobs
    priority: 10
    conda:
        "../../environment.yml"
    threads: BLAS_THREADS
    resources:
        mem_mb=lambda w, attempt: 2000 * attempt,
        runtime=lambda w, attempt: LAYOUT.theory_runtime(w.exp, w.part) * attempt,
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
        code=LAYOUT.code("theory_part"),
    message:
        "Theory curves {wildcards.exp}, part {wildcards.part}"
    script:
        "../scripts/theory_part.py"


rule theory:
    input:
        lambda w: LAYOUT.theory_part_files(w.exp),
    output:
        f"{R}/{{exp}}/theory.nc",
    log:
        f"{R}/logs/{{exp}}/theory.log",
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cfg=lambda w: LAYOUT.exp_slice(w.exp),
        code=LAYOUT.code("theory"),
    message:
        "Theory curves {wildcards.exp}: join the parts"
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
