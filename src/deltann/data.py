"""Gaussian multi-index data: x ~ N(0, I_d), y = g(Theta*^T x) + noise * eps.

Randomness comes only from ``np.random.Generator`` objects built from ``SeedSequence``s, so a
dataset is regenerated bit for bit from its seed instead of being stored on disk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .targets import Target

__all__ = ["Dataset", "stable_hash", "seed_sequence", "teacher", "sample", "make_dataset"]


def stable_hash(text: str) -> int:
    """A 32-bit integer hash of ``text`` that is the same on every machine and run."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def seed_sequence(base_seed: int, key: str, replicate: int) -> np.random.SeedSequence:
    """SeedSequence([base_seed, stable_hash(key), replicate]): the project's one seeding rule."""
    return np.random.SeedSequence([int(base_seed), stable_hash(key), int(replicate)])


def teacher(d: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random orthonormal Theta* of shape (d, k)."""
    if k > d:
        raise ValueError(f"latent dimension k={k} exceeds input dimension d={d}")
    q, r = np.linalg.qr(rng.standard_normal((d, k)))
    return q * np.sign(np.diag(r))


def sample(n: int, theta: np.ndarray, target: Target, noise: float, rng: np.random.Generator,
           offset: float = 0.0, dtype=np.float64):
    """n samples: X (n, d) with iid N(0,1) entries, y (n,) = g(X Theta*) + noise eps - offset."""
    d = theta.shape[0]
    X = rng.standard_normal((n, d), dtype=dtype)
    eps = rng.standard_normal(n) if noise else None
    y = target(X @ theta, eps, noise) - offset
    return X, y.astype(dtype, copy=False)


@dataclass
class Dataset:
    """Train and test samples with their teacher; ``entropy`` records the seed."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    theta: np.ndarray
    entropy: tuple[int, ...]

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]


def make_dataset(target: Target, d: int, n: int, n_test: int, noise: float,
                 ss: np.random.SeedSequence, offset: float = 0.0, dtype=np.float64) -> Dataset:
    """Teacher, train and test sets from one SeedSequence (three spawned children)."""
    if n < 1 or d < 1:
        raise ValueError(f"need n >= 1 and d >= 1, got n={n}, d={d}")
    s_teacher, s_train, s_test = ss.spawn(3)
    theta = teacher(d, target.k, np.random.default_rng(s_teacher))
    X, y = sample(n, theta, target, noise, np.random.default_rng(s_train), offset, dtype)
    Xt, yt = sample(n_test, theta, target, noise, np.random.default_rng(s_test), offset, dtype)
    return Dataset(X, y, Xt, yt, theta, tuple(int(e) for e in np.atleast_1d(ss.entropy)))
