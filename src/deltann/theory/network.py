"""Applicability of the Hessian theory to a network, and the law of its kernel at a point.

At a second-phase point (``second_phase.converged_point``: W orthogonal to the hard directions)
the W-block Hessian is H = (1/n) sum_i K_i (x) x_i x_i^T and the theory's expectations are taken
over the *empirical* law of (K_i, z_i) on the n training samples (z_i = hard coordinates of x_i;
docs/theory.md, section 6).

Applicability: the asymptotic theory needs K bounded below; K_jj contains a_j sigma''(u) r_i with
r = l'(f, y), so an unbounded target with sigma'' != 0 has no lower edge (no asymptotic outlier),
and sigma'' = 0 (relu, linear) leaves no label information in H (no outlier at all).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import get_activation
from ..losses import get_loss
from ..model import Params, kernel
from ..targets import get_target
from .spectrum import KernelLaw

__all__ = [
    "applicability", "ProjectedGDDiverged", "SecondPhase", "kernel_law",
]

_BOUNDED_DERIVS = {"tanh", "erf", "softplus"}  # sigma' and sigma'' bounded
_ZERO_CURVATURE = {"relu", "he1"}  # sigma'' = 0 (a.e.)


def applicability(target: str, activation: str, loss: str) -> str | None:
    """None if the asymptotic Hessian theory applies, else the reason it does not."""
    t = get_target(target)
    if not t.hard:
        return f"target {t.name} has no hard direction (delta_NN = 0: learned by the gradient)"
    if activation in _ZERO_CURVATURE:
        return (f"activation {activation} has sigma'' = 0: the Hessian carries no label "
                "information along hard directions, so no outlier exists")
    if activation not in _BOUNDED_DERIVS:
        return (f"activation {activation} has unbounded derivatives: the kernel K is unbounded "
                "and the limiting bulk has no edge")
    if not t.bounded:
        return (f"target {t.name} is unbounded and sigma'' != 0: K contains a sigma''(u) "
                f"l'(f, y), unbounded below, so the limiting bulk has no lower edge "
                "(docs/theory.md section 5); use a bounded target such as z2sat")
    return None


class ProjectedGDDiverged(RuntimeError):
    """The first phase diverged (e.g. the correlation loss with a trained second layer, which is
    unbounded below): there is no second-phase point."""


@dataclass
class SecondPhase:
    """Projected-GD end point with its data (X (n, d), y (n,), hard directions U (d, k_h))."""

    params: Params
    X: np.ndarray
    y: np.ndarray
    U: np.ndarray
    train_risk: float


def kernel_law(sp: SecondPhase, activation: str, loss: str) -> KernelLaw:
    """Empirical law of (K_i, z_i) at the second-phase point (weights 1/n)."""
    K = kernel(sp.params, sp.X, sp.y, get_activation(activation), get_loss(loss))
    return KernelLaw.empirical(K, sp.X @ sp.U)
