"""Per-sample losses l(f, y) with dl/df and d2l/df2 (elementwise)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Loss", "LOSSES", "get_loss", "loss_names"]

Array = np.ndarray


@dataclass(frozen=True)
class Loss:
    """l(f, y), l'(f, y) = dl/df, l''(f, y) = d2l/df2."""

    name: str
    value: Callable[[Array, Array], Array]
    d1: Callable[[Array, Array], Array]
    d2: Callable[[Array, Array], Array]
    formula: str


_REGISTRY = [
    Loss("square", lambda f, y: 0.5 * (f - y) ** 2, lambda f, y: f - y,
         lambda f, y: np.ones_like(f), "(f - y)^2 / 2"),
    Loss("correlation", lambda f, y: -y * f, lambda f, y: -y + 0.0 * f,
         lambda f, y: np.zeros_like(f), "-y f"),
]
LOSSES: dict[str, Loss] = {x.name: x for x in _REGISTRY}


def loss_names() -> list[str]:
    return list(LOSSES)


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
    return LOSSES[name]
