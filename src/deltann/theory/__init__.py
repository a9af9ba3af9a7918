"""Theory: delta_alg, the deterministic-equivalent Hessian spectrum, and the delta_NN solver.

Formulas and conventions: docs/theory.md of the project (sections 1-7), restated in the
docstrings. Every formula is tested against dense-eigh simulation in tests/test_theory_*.py.
"""

from .alg import delta_alg
from .spectrum import KernelLaw, bulk_density, edge, outlier, threshold_delta

__all__ = ["KernelLaw", "bulk_density", "delta_alg", "edge", "outlier", "threshold_delta"]
