rule figure:
    input:
        unpack(lambda w: LAYOUT.figure_inputs(w.fig)),
        module=lambda w: LAYOUT.figure_module(w.fig),
    output:
        png=report(
            f"{R}/figures/{{fig}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{fig}"},
        ),
        pdf=f"{R}/figures/{{fig}}.pdf",
    log:
        f"{R}/logs/figures/{{fig}}.log",
    benchmark:
        f"{R}/benchmarks/figures/{{fig}}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg=lambda w: LAYOUT.fig_slice(w.fig),
        code=lambda w: LAYOUT.figure_code(w.fig),
    message:
        "Figure {wildcards.fig}"
    script:
        "../scripts/figure.py"
