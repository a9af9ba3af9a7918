"""deltann benchmark suite: ``python -m benchmarks [--quick] [--only gd,torch,spectrum,pipeline]``.

Every row is a ratio of two timings taken in the same process run (the machine is shared and
noisy): medians of repeated, interleaved timings, with their interquartile range (IQR).
Sections: ``gd`` (GD step vs the memory-bandwidth bound), ``torch`` (GD step and HVP vs PyTorch
autograd), ``spectrum`` (dense Hessian + eigh; Lanczos vs dense), ``pipeline`` (snakemake end to
end, per-rule times and peak memory from Snakemake's benchmark files).
"""
