"""Figures: one module per kind, each ``draw(data, fig_cfg) -> matplotlib Figure`` from NetCDF data.

Figures never train or diagonalise anything. ``data`` maps an input role to an ``xr.Dataset``:
``sweep`` (the experiment's sweep.nc), ``theory`` (its theory.nc), ``trajectory`` (its
trajectory.nc), ``thresholds`` (thresholds.nc), ``check_<experiment>`` (other sweeps, for
simulation checks) and ``theory_<experiment>`` (other experiments' theory.nc). ``ROLES`` says
which roles each kind reads (optional ones only when the experiment computes them); each module's
``REQUIRES[role] = {"variables": ..., "dims": ..., "attrs": ...}`` is checked before drawing.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

__all__ = ["FIGURE_KINDS", "ROLES", "draw", "input_roles", "load_inputs", "module_path",
           "provenance", "render", "save"]

# kind -> (required roles, optional roles); "checks" expands to check_<exp> per fig_cfg["checks"],
# "theories" to theory_<exp> per fig_cfg["theories"] (that experiment's theory.nc)
ROLES = {
    "phase_diagram": (("sweep", "theory"), ()),
    "overlap_vs_delta": (("sweep",), ()),
    "dynamics": (("sweep",), ("theory",)),
    "spectrum": (("sweep",), ("theory",)),
    "bbp": (("theory",), ()),
    "architecture": (("thresholds",), ("checks",)),
    "escape_time": (("sweep", "theory"), ()),
    "trajectory_spectrum": (("trajectory",), ()),
    "finite_size": ((), ("theory", "checks", "limit")),
    "grokking": ((), ("checks",)),
    "initialisation": ((), ("checks", "theories")),
}
FIGURE_KINDS = tuple(ROLES)


def _module(kind: str):
    if kind not in ROLES:
        raise KeyError(f"unknown figure kind {kind!r}; known kinds: {', '.join(FIGURE_KINDS)}")
    return import_module(f"{__name__}.{kind}")


def input_roles(kind: str, fig_cfg: dict, experiments: dict) -> list[str]:
    """Roles a figure reads: the required ones, ``theory`` if its experiment computes theory
    curves, and ``check_<exp>`` for each experiment in ``fig_cfg["checks"]``."""
    if kind not in ROLES:
        raise KeyError(f"unknown figure kind {kind!r}; known kinds: {', '.join(FIGURE_KINDS)}")
    required, optional = ROLES[kind]
    roles = list(required)
    exp = experiments.get(fig_cfg.get("experiment"))
    if "theory" in optional and exp is not None and exp["theory"]["enabled"]:
        roles.append("theory")
    if "checks" in optional:
        roles += [f"check_{e}" for e in fig_cfg.get("checks", [])]
    if "theories" in optional:
        roles += [f"theory_{e}" for e in fig_cfg.get("theories", [])]
    if "limit" in optional and fig_cfg.get("limit"):
        roles.append("limit")
    return roles


def _requires(mod, role: str) -> dict:
    """The REQUIRES entry of an input role (check_<exp> -> checks, theory_<exp> -> theory)."""
    if role.startswith("check_"):
        return mod.REQUIRES["checks"]
    return mod.REQUIRES["theory" if role.startswith("theory_") else role]


def _experiment_of(role: str, fig_cfg: dict):
    for prefix in ("check_", "theory_"):
        if role.startswith(prefix):
            return role.removeprefix(prefix)
    return fig_cfg.get("experiment")


def module_path(kind: str) -> str:
    """Source file of a figure kind (a workflow input, so editing it re-draws only that figure)."""
    _module(kind)  # validates the name
    return str(Path(__file__).with_name(f"{kind}.py"))


def draw(kind: str, data, fig_cfg: dict, paths=None):
    """Draw figure ``kind`` from ``data`` (role -> Dataset; a bare Dataset is its first role).

    First checks each dataset has what the kind needs (its module's ``REQUIRES``); a file from an
    older or incompatible version fails with an ``io.IncompatibleFileError`` naming what is missing.
    paths: role -> file name, for the error messages.
    """
    import xarray as xr

    from ..io import require
    from .style import apply_style

    mod = _module(kind)
    if isinstance(data, xr.Dataset):
        data = {ROLES[kind][0][0]: data}
    if isinstance(paths, str | Path):
        paths = {ROLES[kind][0][0]: paths}
    paths = paths or {}
    missing = [r for r in ROLES[kind][0] if r not in data]
    if missing:
        raise KeyError(f"figure kind {kind!r} needs inputs {missing}")
    for role, ds in data.items():
        require(ds, **_requires(mod, role), path=paths.get(role),
                what=f"figure kind {kind!r} ({role})")
    apply_style()
    return mod.draw(data, fig_cfg)


def load_inputs(fig_cfg: dict, paths: dict) -> dict:
    """role -> Dataset for a figure, each file read by ``io.read_result``: it must hold what the
    kind needs, and sweep/theory/trajectory files must belong to the figure's experiment
    (``check_<exp>``: to that experiment)."""
    from ..io import read_result

    mod = _module(fig_cfg["kind"])
    out = {}
    for role, path in paths.items():
        req = _requires(mod, role)
        exp = _experiment_of(role, fig_cfg)
        expect = {"experiment": exp} if exp and role not in ("thresholds", "limit") else None
        name = fig_cfg.get("figure", fig_cfg["kind"])
        out[role] = read_result(path, **req, expect=expect,
                                what=f"figure {name!r} ({fig_cfg['kind']}, input {role})")
    return out


def render(fig_cfg: dict, paths: dict, *out_paths) -> None:
    """The figure rule: read the inputs (``load_inputs``), draw, save to ``out_paths`` with
    ``provenance`` in the file metadata."""
    data = load_inputs(fig_cfg, paths)
    save(draw(fig_cfg["kind"], data, fig_cfg, paths=paths), *out_paths,
         meta=provenance(fig_cfg, data))


def provenance(fig_cfg: dict, data: dict | None = None) -> dict:
    """What a figure file records about itself: the package version, the figure's config hash
    and the config hash / git commit of each input file (role -> values)."""
    import hashlib

    from .. import __version__
    from ..io import config_json, git_commit

    out = {"deltann_version": __version__, "git_commit": git_commit(),
           "figure_config_sha256": hashlib.sha256(config_json(fig_cfg).encode()).hexdigest()}
    for role, ds in (data or {}).items():
        out[f"input_{role}_config_sha256"] = str(ds.attrs.get("config_sha256", "unknown"))
        out[f"input_{role}_git_commit"] = str(ds.attrs.get("git_commit", "unknown"))
    return out


def save(fig, *paths, meta: dict | None = None) -> None:
    """Save ``fig`` to each path (format from the suffix) atomically, then close it. ``meta``
    (e.g. ``provenance(...)``) goes into the PNG text chunks and the PDF info dictionary."""
    import json
    import os

    import matplotlib.pyplot as plt

    meta = {k: str(v) for k, v in (meta or {}).items()}
    for path in paths:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
        if path.suffix == ".pdf":
            md = {"Creator": f"deltann {meta.get('deltann_version', '')}".strip(),
                  "Subject": json.dumps(meta, sort_keys=True)} if meta else None
        else:
            md = ({"Software": f"deltann {meta.get('deltann_version', '')}", **meta}
                  if meta and path.suffix == ".png" else None)
        fig.savefig(tmp, metadata=md)
        os.replace(tmp, path)
    plt.close(fig)
