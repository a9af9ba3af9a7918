"""Figures: one module per kind, each ``draw(ds, fig_cfg) -> matplotlib Figure`` from NetCDF data.

Figures never train or diagonalise anything; they read ``sweep.nc`` (an ``xr.Dataset``).
Each module declares ``REQUIRES = {"variables": ..., "dims": ..., "attrs": ...}``, checked by
``draw`` before drawing.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

__all__ = ["FIGURE_KINDS", "THEORY_KINDS", "draw", "module_path", "save"]

FIGURE_KINDS = ("overlap_vs_delta", "dynamics", "spectrum", "bbp")
# kinds drawn from theory.nc instead of sweep.nc
THEORY_KINDS = ("bbp",)


def _module(kind: str):
    if kind not in FIGURE_KINDS:
        raise KeyError(f"unknown figure kind {kind!r}; known kinds: {', '.join(FIGURE_KINDS)}")
    return import_module(f"{__name__}.{kind}")


def module_path(kind: str) -> str:
    """Source file of a figure kind (a workflow input, so editing it re-draws only that figure)."""
    _module(kind)  # validates the name
    return str(Path(__file__).with_name(f"{kind}.py"))


def draw(kind: str, ds, fig_cfg: dict, path=None):
    """Draw figure ``kind`` from sweep dataset ``ds`` with options ``fig_cfg``.

    First checks ``ds`` has what the kind needs (its module's ``REQUIRES``); a file from an older
    or incompatible version fails with an ``io.IncompatibleFileError`` naming what is missing.
    """
    from ..io import require
    from .style import apply_style

    mod = _module(kind)
    require(ds, **mod.REQUIRES, path=path, what=f"figure kind {kind!r}")
    apply_style()
    return mod.draw(ds, fig_cfg)


def save(fig, *paths) -> None:
    """Save ``fig`` to each path (format from the suffix) atomically, then close it."""
    import os

    import matplotlib.pyplot as plt

    for path in paths:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
        fig.savefig(tmp)
        os.replace(tmp, path)
    plt.close(fig)
