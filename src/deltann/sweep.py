"""Sweep grids: an experiment's config expands to run points with stable, parseable run ids."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

__all__ = ["SWEEP_AXES", "INIT_DEFAULTS", "Point", "expand", "run_id", "parse_run_id", "n_samples",
           "data_key",
           "init_tags", "parse_init_tags", "init_key_parts", "parse_init_key_parts"]

# Dimension names of sweep.nc, in order; config keys are the same except m <- width, seed <- seeds.
# init_scale (W0 ~ N(0, init_scale^2/d)) and a_init (a0 = a_init/m) are the initialisation axes.
SWEEP_AXES = ("target", "activation", "loss", "m", "d", "delta", "seed", "init_scale", "a_init")
#: initialisation axes and their default values (run ids name only values other than these)
INIT_DEFAULTS = {"init_scale": 1.0, "a_init": 1.0}
_INIT_TAGS = {"init_scale": "i", "a_init": "a"}


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
    init_scale: float = 1.0
    a_init: float = 1.0

    @property
    def n(self) -> int:
        return n_samples(self.d, self.delta)

    def as_dict(self) -> dict:
        return asdict(self)


def data_key(p: Point) -> tuple:
    """(target, d, n, seed): runs of one experiment with equal keys train on the same samples
    (``pipeline.data_seed``); they differ only in activation, loss, width or initialisation."""
    return (p.target, p.d, p.n, p.seed)


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
        **{k: [float(v) for v in exp.get(k, [default])] for k, default in INIT_DEFAULTS.items()},
    }


def expand(exp: dict) -> list[Point]:
    """All points of the product grid of an experiment's sweep axes."""
    axes = axis_values(exp)
    return [Point(*vals) for vals in itertools.product(*axes.values())]


def init_tags(init_scale: float = 1.0, a_init: float = 1.0) -> str:
    """'' at the default initialisation, else '__i<init_scale>' and/or '__a<a_init>' (%g)."""
    vals = {"init_scale": init_scale, "a_init": a_init}
    return "".join(f"__{_INIT_TAGS[k]}{float(v):g}" for k, v in vals.items()
                   if float(v) != INIT_DEFAULTS[k])


def init_key_parts(init_scale: float = 1.0, a_init: float = 1.0) -> list[str]:
    """The initialisation in a '/'-separated cell key: [] at the default, else 'i=<s>', 'a=<a>'
    (the reasons / seed_scans keys of theory.nc and thresholds.nc)."""
    return [f"{t[0]}={t[1:]}" for t in init_tags(init_scale, a_init).split("__")[1:]]


def parse_init_key_parts(parts: list[str]) -> dict:
    """Inverse of ``init_key_parts``: {init_scale, a_init} with the defaults filled in."""
    return parse_init_tags([x.replace("=", "", 1) for x in parts])


def parse_init_tags(tags: list[str]) -> dict:
    """Inverse of ``init_tags`` (the tokens after the first '__'-separated fields):
    {init_scale, a_init} with the defaults filled in."""
    out, order = {}, list(_INIT_TAGS)
    for tok in tags:
        key = next((k for k, t in _INIT_TAGS.items() if tok.startswith(t)), None)
        if key is None or key in out or (out and order.index(key) < order.index(list(out)[-1])):
            raise ValueError(f"bad initialisation tag {tok!r}")
        out[key] = float(tok[1:])
    return {**INIT_DEFAULTS, **out}


def run_id(p: Point) -> str:
    """'z2__softplus__square__m2__d100__delta1.5__s0' (delta in %g format), followed by
    '__i<init_scale>' / '__a<a_init>' where the initialisation is not the default (1, 1)."""
    return (f"{p.target}__{p.activation}__{p.loss}__m{p.m}__d{p.d}__delta{p.delta:g}__s{p.seed}"
            + init_tags(p.init_scale, p.a_init))


def parse_run_id(rid: str) -> Point:
    """Inverse of ``run_id``."""
    parts = rid.split("__")
    try:
        target, act, loss, m, d, delta, seed = parts[:7]
        assert m[0] == "m" and d[0] == "d" and delta.startswith("delta") and seed[0] == "s"
        return Point(target, act, loss, int(m[1:]), int(d[1:]), float(delta[5:]), int(seed[1:]),
                     **parse_init_tags(parts[7:]))
    except (ValueError, AssertionError, IndexError) as err:
        raise ValueError(f"malformed run id {rid!r}; expected "
                         "'<target>__<activation>__<loss>__m<M>__d<D>__delta<DELTA>__s<SEED>"
                         "[__i<INIT_SCALE>][__a<A_INIT>]'") from err
