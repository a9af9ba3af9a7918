"""The one NetCDF writer of the output contract, and provenance attributes.

``write_netcdf`` writes atomically (temporary file in the target directory, then ``os.replace``),
with engine netcdf4, zlib compression on data variables and no ``_FillValue`` on coordinates.
It refuses datasets that break the contract (missing ``long_name``/``units``, missing global
provenance attributes, attribute values that are not str/int/float). ``require`` is the reader's
side: it checks that a file has what a consumer (e.g. a figure kind) needs and otherwise names the
missing variables, dimensions or attributes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__

__all__ = ["REQUIRED_GLOBAL_ATTRS", "IncompatibleFileError", "provenance_attrs", "write_netcdf",
           "read_netcdf", "require", "read_result", "ResultFileError", "CorruptFileError",
           "ForeignFileError", "git_commit", "config_json"]

REQUIRED_GLOBAL_ATTRS = ("title", "Conventions", "source", "history", "config", "config_sha256",
                         "git_commit", "seed_entropy", "created")


def _head(start) -> str | None:
    """HEAD of the work tree at ``start``, with "+dirty" when its code (src, workflow,
    Snakefile) differs from HEAD or has untracked files."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=start, capture_output=True,
                             text=True, timeout=10, check=True)
        head = out.stdout.strip() or None
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=start,
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        st = subprocess.run(["git", "status", "--porcelain", "--", "src", "workflow",
                             "Snakefile"], cwd=top, capture_output=True, text=True, timeout=10,
                            check=True)
        return f"{head}+dirty" if head and st.stdout.strip() else head
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(start: str | os.PathLike | None = None) -> str:
    """HEAD commit of the git work tree containing ``start`` ("<sha>+dirty" when the code
    differs from it), or 'unknown' outside git.

    Default: the source checkout this package runs from (the code that made the file), else the
    current directory (the workflow's checkout when the package is installed from a wheel).
    """
    starts = [start] if start is not None else [Path(__file__).resolve().parent, os.getcwd()]
    for s in starts:
        if Path(s).is_dir() and (commit := _head(s)):
            return commit
    return "unknown"


def config_json(config: dict) -> str:
    """Canonical JSON of a config slice (sorted keys): what is stored and hashed."""
    return json.dumps(config, sort_keys=True, default=_jsonable)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (tuple, set)):
        return list(x)
    raise TypeError(f"not JSON-serialisable in config: {x!r}")


def provenance_attrs(title: str, config: dict, seed_entropy="", history: str = "") -> dict:
    """Global attributes of the contract for a file made from ``config`` (a rule's config slice)."""
    cj = config_json(config)
    if not isinstance(seed_entropy, str):
        seed_entropy = " ".join(str(int(e)) for e in np.atleast_1d(seed_entropy))
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return {
        "title": title,
        "Conventions": "CF-1.8",
        "source": f"deltann {__version__}",
        "history": f"{now} {history}".strip(),
        "config": cj,
        "config_sha256": hashlib.sha256(cj.encode()).hexdigest(),
        "git_commit": git_commit(),
        "seed_entropy": seed_entropy,
        "created": now,
    }


def _check(ds: xr.Dataset, path) -> None:
    missing = [a for a in REQUIRED_GLOBAL_ATTRS if a not in ds.attrs]
    if missing:
        raise ValueError(f"{path}: dataset lacks global attributes {missing}")
    for name, var in ds.variables.items():
        for key in ("long_name", "units"):
            if key not in var.attrs:
                raise ValueError(f"{path}: variable {name!r} has no {key!r} attribute")
    for where, attrs in [("global", ds.attrs)] + [(n, v.attrs) for n, v in ds.variables.items()]:
        for k, v in attrs.items():
            numeric_1d = (isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "iuf")
            if numeric_1d:  # e.g. CF flag_values
                continue
            if not isinstance(v, (str, int, float, np.integer, np.floating)) or isinstance(v, bool):
                raise TypeError(f"{path}: attribute {where}.{k} = {v!r} is not str/int/float "
                                "or a 1-d numeric array")


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically (netcdf4, compressed data, no coordinate _FillValue)."""
    path = Path(path)
    _check(ds, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = {}
    for name, var in ds.variables.items():
        if name in ds.coords:
            enc[name] = {"_FillValue": None}
        elif var.dtype.kind in "fiu" and var.ndim > 0:
            enc[name] = {"zlib": True, "complevel": 4}
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a job killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the user's umask
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Load a file of the contract fully into memory and close it (``xr.load_dataset``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such NetCDF file: {path}")
    return xr.load_dataset(path, engine="netcdf4")


class ResultFileError(ValueError):
    """A result file a reader cannot use; the message names the file, why, and what to do."""


class IncompatibleFileError(ResultFileError):
    """A NetCDF file lacks what its reader needs (older or foreign version of the contract)."""


class CorruptFileError(ResultFileError):
    """A file that exists but cannot be read as NetCDF (truncated, not NetCDF)."""


class ForeignFileError(ResultFileError):
    """A readable result file made for another experiment or run than the reader expects."""


_REGENERATE = ("if it is a deltann output, delete it and run snakemake again: that regenerates "
               "this file and keeps every other output")


def read_result(path: str | os.PathLike, variables=(), attrs=(), dims=(),
                expect: dict | None = None, what: str = "the reader") -> xr.Dataset:
    """The one reader of result files: ``read_netcdf`` + ``require`` + identity check.

    expect: global attributes that must have these values (e.g. {"experiment": "ci"} or
    {"run_id": ...}). Raises FileNotFoundError, CorruptFileError (unreadable),
    IncompatibleFileError (missing items) or ForeignFileError (another experiment/run), each
    naming the file, why, and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what}: no such result file: {path}")
    if path.is_dir():
        raise FileNotFoundError(f"{what}: {path} is a directory, not a result file (e.g. "
                                f"{path / 'sweep.nc'})")
    try:
        ds = read_netcdf(path)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        why = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise CorruptFileError(f"{path}: cannot be read as NetCDF ({why}): the file is corrupt, "
                               f"truncated or not a deltann output; {_REGENERATE}") from None
    require(ds, variables=variables, attrs=(*attrs, *(expect or {})), dims=dims, path=path,
            what=what)
    for key, want in (expect or {}).items():
        if str(ds.attrs[key]) != str(want):
            raise ForeignFileError(f"{path}: {what} expects {key} {want!r}, the file was made "
                                   f"for {key} {ds.attrs[key]!r} (copied from another run or "
                                   f"config?); {_REGENERATE}")
    return ds


def require(ds: xr.Dataset, variables=(), attrs=(), dims=(), path=None,
            what: str = "the reader") -> xr.Dataset:
    """Check ``ds`` has ``variables`` (data or coordinates), ``dims`` and global ``attrs``.

    Raises IncompatibleFileError naming the file, every missing item, the version that wrote the
    file and this version. Returns ``ds`` unchanged.
    """
    missing = {
        "variables": [v for v in variables if v not in ds.variables],
        "dimensions": [d for d in dims if d not in ds.dims],
        "attributes": [a for a in attrs if a not in ds.attrs],
    }
    parts = [f"missing {kind} {names}" for kind, names in missing.items() if names]
    if parts:
        where = path or ds.encoding.get("source") or "dataset"
        made = ds.attrs.get("source", "an unknown (older) version")
        raise IncompatibleFileError(
            f"{where}: {what} needs what this file does not have: {'; '.join(parts)}. The file "
            f"was written by {made}, this is deltann {__version__}; {_REGENERATE}.")
    return ds
