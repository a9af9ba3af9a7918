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

__all__ = ["__version__"]
