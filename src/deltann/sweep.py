"""Sweep grids: an experiment's config expands to run points with stable, parseable run ids."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

__all__ = ["SWEEP_AXES", "Point", "expand", "run_id", "parse_run_id", "n_samples"]

# Dimension names of sweep.nc, in order; config keys are the same except m <- width, seed <- seeds.
SWEEP_AXES = ("target", "activation", "loss", "m", "d", "delta", "seed")


@dataclass(frozen=True)
class Point:
    """One GD run of an experiment."""

    target: str
    activation: str
    loss: str
    m: int
    d: int
    delta: float
    seed: int

    @property
    def n(self) -> int:
        return n_samples(self.d, self.delta)

    def as_dict(self) -> dict:
        return asdict(self)


def n_samples(d: int, delta: float) -> int:
    """n = round(delta d), at least 1."""
    return max(1, int(round(delta * d)))


def axis_values(exp: dict) -> dict:
    """The sweep axes of one (validated) experiment config, in SWEEP_AXES order."""
    return {
        "target": list(exp["target"]),
        "activation": list(exp["activation"]),
        "loss": list(exp["loss"]),
        "m": [int(v) for v in exp["width"]],
        "d": [int(v) for v in exp["d"]],
        "delta": [float(v) for v in exp["delta"]],
        "seed": list(range(int(exp["seeds"]))),
    }


def expand(exp: dict) -> list[Point]:
    """All points of the product grid of an experiment's sweep axes."""
    axes = axis_values(exp)
    return [Point(*vals) for vals in itertools.product(*axes.values())]


def run_id(p: Point) -> str:
    """'z2__softplus__square__m2__d100__delta1.5__s0' (delta in %g format)."""
    return (f"{p.target}__{p.activation}__{p.loss}__m{p.m}__d{p.d}__delta{p.delta:g}__s{p.seed}")


def parse_run_id(rid: str) -> Point:
    """Inverse of ``run_id``."""
    parts = rid.split("__")
    try:
        target, act, loss, m, d, delta, seed = parts
        assert m[0] == "m" and d[0] == "d" and delta.startswith("delta") and seed[0] == "s"
        return Point(target, act, loss, int(m[1:]), int(d[1:]), float(delta[5:]), int(seed[1:]))
    except (ValueError, AssertionError, IndexError) as err:
        raise ValueError(f"malformed run id {rid!r}; expected "
                         "'<target>__<activation>__<loss>__m<M>__d<D>__delta<DELTA>__s<SEED>'"
                         ) from err
