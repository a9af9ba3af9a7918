rule figure:
    message:
        "Figure {wildcards.fig}"
    input:
        sweep=lambda w: LAYOUT.sweep_file(config["figures"][w.fig]["experiment"]),
        module=lambda w: LAYOUT.figure_module(w.fig),
    output:
        png=f"{R}/figures/{{fig}}.png",
        pdf=f"{R}/figures/{{fig}}.pdf",
    params:
        cfg=lambda w: LAYOUT.fig_slice(w.fig),
    log:
        f"{R}/logs/figures/{{fig}}.log",
    benchmark:
        f"{R}/benchmarks/figures/{{fig}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../environment.yml"
    script:
        "../scripts/figure.py"
