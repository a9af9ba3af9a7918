"""Activations with sigma, sigma' and sigma'' in closed form, vectorised over arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf, expit

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "activation_names"]

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """sigma and its first two derivatives (elementwise)."""

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array], Array]
    d2f: Callable[[Array], Array]
    formula: str
    f_df: Callable[[Array, Array, Array, Array], None] | None = None

    def values_and_slopes(self, u: Array, s: Array, ds: Array, tmp: Array) -> None:
        """s <- sigma(u), ds <- sigma'(u) in place (same shape as u; ``tmp`` is scratch).

        Uses the fused kernel ``f_df`` when the activation has one (one pass, no temporaries of
        the size of u), else the two closed forms.
        """
        if self.f_df is not None:
            self.f_df(u, s, ds, tmp)
        else:
            s[...] = self.f(u)
            ds[...] = self.df(u)


def _tanh_d1(u):
    t = np.tanh(u)
    return 1.0 - t * t


def _tanh_d2(u):
    t = np.tanh(u)
    return -2.0 * t * (1.0 - t * t)


def _tanh_f_df(u, s, ds, tmp):
    np.tanh(u, out=s)
    np.multiply(s, s, out=ds)
    np.subtract(1.0, ds, out=ds)


_SQRT_2_PI = np.sqrt(2.0 / np.pi)


def _erf_d1(u):
    return _SQRT_2_PI * np.exp(-0.5 * u * u)


def _erf_d2(u):
    return -u * _SQRT_2_PI * np.exp(-0.5 * u * u)


def _softplus(u):
    return np.logaddexp(0.0, u)


def _softplus_f_df(u, s, ds, tmp):
    """softplus = max(u, 0) + log1p(e), sigma' = 1/(1+e) (u >= 0) or e/(1+e), e = exp(-|u|)
    (the branches of np.logaddexp(0, u) and scipy's expit, sharing one exp)."""
    np.abs(u, out=tmp)
    np.negative(tmp, out=tmp)
    np.exp(tmp, out=tmp)
    np.log1p(tmp, out=s)
    np.add(tmp, 1.0, out=ds)
    np.divide(tmp, ds, out=tmp)  # e/(1+e)
    np.divide(1.0, ds, out=ds)  # 1/(1+e)
    neg = u < 0
    np.copyto(ds, tmp, where=neg)
    np.maximum(u, 0.0, out=tmp)
    s += tmp


def _softplus_d2(u):
    s = expit(u)
    return s * (1.0 - s)


_REGISTRY = [
    Activation("tanh", np.tanh, _tanh_d1, _tanh_d2, "tanh(u)", _tanh_f_df),
    Activation("erf", lambda u: erf(u / np.sqrt(2.0)), _erf_d1, _erf_d2,
               "erf(u/sqrt 2) (sigma' = sqrt(2/pi) exp(-u^2/2))"),
    Activation("relu", lambda u: np.maximum(u, 0.0), lambda u: (u > 0).astype(u.dtype),
               np.zeros_like, "max(u, 0) (sigma'' = 0 a.e.)"),
    Activation("softplus", _softplus, expit, _softplus_d2, "log(1 + e^u)", _softplus_f_df),
    Activation("he1", lambda u: u, np.ones_like, np.zeros_like, "He1(u) = u"),
    Activation("he2", lambda u: u * u - 1.0, lambda u: 2.0 * u,
               lambda u: np.full_like(u, 2.0), "He2(u) = u^2 - 1"),
    Activation("he3", lambda u: u ** 3 - 3.0 * u, lambda u: 3.0 * u * u - 3.0,
               lambda u: 6.0 * u, "He3(u) = u^3 - 3u"),
    Activation("he4", lambda u: u ** 4 - 6.0 * u * u + 3.0, lambda u: 4.0 * u ** 3 - 12.0 * u,
               lambda u: 12.0 * u * u - 12.0, "He4(u) = u^4 - 6u^2 + 3"),
]
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _REGISTRY}


def activation_names() -> list[str]:
    return list(ACTIVATIONS)


def get_activation(name: str) -> Activation:
    if name not in ACTIVATIONS:
        raise KeyError(f"unknown activation {name!r}; known activations: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]
