"""The second-phase point of a network and the law of its Hessian kernel there.

Second-phase point (theory.md section 8, candidate "B-emp"): run *projected* GD -- the same GD as
the pipeline but with the hard latent directions removed from W (init and every step) -- for
``step`` steps. This follows the scenario's first phase (fit the mean, the easy directions and
noise) and never learns the hard ones. At that point the W-block Hessian is
H = (1/n) sum_i K_i (x) x_i x_i^T and the theory's expectations are taken over the *empirical*
law of (K_i, z_i) on the n training samples (z_i = hard coordinates of x_i).

Applicability: the asymptotic theory needs K bounded below; K_jj contains a_j sigma''(u) r_i with
r = l'(f, y), so an unbounded target with sigma'' != 0 has no lower edge (no asymptotic outlier),
and sigma'' = 0 (relu, linear) leaves no label information in H (no outlier at all).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..activations import get_activation
from ..data import make_dataset, seed_sequence
from ..losses import get_loss
from ..model import Params, kernel
from ..sweep import n_samples
from ..targets import get_target, target_mean
from ..train import TrainConfig, train
from .spectrum import KernelLaw

__all__ = [
    "applicability", "ProjectedGDDiverged", "SecondPhase", "second_phase_point", "kernel_law",
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
                "(theory.md section 5); use a bounded target such as z2sat")
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


def second_phase_point(target: str, activation: str, loss: str, m: int, d: int, delta: float,
                       cfg: TrainConfig, seed: int = 0, base_seed: int = 20260,
                       center: bool = True, noise: float = 0.0) -> SecondPhase:
    """Run projected GD (hard directions frozen out of W) for cfg.steps steps, on n = round(delta
    d) samples with label noise sd ``noise``."""
    t = get_target(target)
    n = n_samples(d, delta)
    ss = seed_sequence(base_seed, f"theory|{target}|d={d}|n={n}", seed)
    data = make_dataset(t, d, n, 1, noise, ss, offset=target_mean(t) if center else 0.0)
    U = data.theta[:, list(t.hard)]
    cfg = replace(cfg, snapshot_steps=(cfg.steps,))
    res = train(data, get_activation(activation), get_loss(loss), m, cfg,
                np.random.default_rng(ss.spawn(1)[0]), progress_seconds=1e9, frozen=U)
    if res.diverged:
        raise ProjectedGDDiverged(f"projected GD diverged at step {res.diverged_step} "
                           f"({target}, {activation}, m={m}, d={d}, delta={delta})")
    return SecondPhase(res.snapshots[-1], data.X, data.y, U, float(res.train_risk[-1]))


def kernel_law(sp: SecondPhase, activation: str, loss: str) -> KernelLaw:
    """Empirical law of (K_i, z_i) at the second-phase point (weights 1/n)."""
    K = kernel(sp.params, sp.X, sp.y, get_activation(activation), get_loss(loss))
    return KernelLaw.empirical(K, sp.X @ sp.U)
