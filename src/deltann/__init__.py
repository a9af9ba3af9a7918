"""deltann: phase transitions for feature learning in two-layer networks.

Gradient descent on multi-index data, Hessian spectra at the plateau, and the theory of the
threshold delta_NN (Montanari & Wang, 2026). All logic lives in this package; the Snakemake
workflow in ``workflow/`` only calls it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deltann")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

#: public name -> module that defines it (imported on first use: ``import deltann`` stays light)
_API = {
    "get_target": "targets", "get_activation": "activations", "get_loss": "losses",
    "make_dataset": "data", "seed_sequence": "data", "Dataset": "data",
    "TrainConfig": "train", "TrainResult": "train", "train_gd": "train", "Params": "model",
    "spectrum": "hessian", "Spectrum": "hessian",
    "KernelLaw": "theory.spectrum", "edge": "theory.spectrum", "outlier": "theory.spectrum",
    "delta_alg": "theory.alg", "PointConfig": "theory.second_phase",
    "converged_point": "theory.second_phase", "delta_nn": "theory.threshold",
    "NNThreshold": "theory.threshold", "read_result": "io", "write_netcdf": "io",
    "predict_escape": "escape", "EscapePrediction": "escape",
    "transition_rows": "finite_size", "plateau_rows": "finite_size",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from importlib import import_module

        attr = "train" if name == "train_gd" else name  # deltann.train is also a module
        return getattr(import_module(f"{__name__}.{_API[name]}"), attr)
    raise AttributeError(f"module 'deltann' has no attribute {name!r}")
