"""delta_NN(d) -> d = infinity: merge thresholds tables of several d and extrapolate each cell
(docs/theory.md section 7).

Fit (weighted least squares, weights 1/err_d^2, over the d where delta_NN is a number):

    delta_NN(d) = a + b / sqrt(d),     delta_NN(inf) = a +- sqrt(Cov[a,a]) max(1, sqrt(chi2/dof))

(the finite-size corrections of a spiked-matrix edge are O(d^-1/2) and smaller; the covariance is
inflated by the Birge ratio when the points scatter more than their error bars). A constant fit
c +- err and its chi2/dof are reported next to it; with two d the a + b/sqrt(d) fit has no
degree of freedom and its error is the propagated one; with one d the limit is not estimated.
A cell with no number at any d gets a status instead: "none" (no negative theta-outlier up to
the table's max delta at every d), "unconverged" (no converged second-phase point at every d) or
"mixed".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .table import point_key

__all__ = ["LimitFit", "fit_limit", "cell_status", "limit_table", "limit_markdown", "wls"]

# reason prefixes of thresholds.nc files written before delta_nn_status existed
_REASON_STATUS = (("no negative theta-outlier", "none"), ("no converged", "unconverged"),
                  ("seeds disagree", "disagree"), ("mean of", "value"),
                  ("not computed", "not_computed"))


@dataclass
class LimitFit:
    """Weighted fits of delta_NN(d): a + b/sqrt(d) and a constant c (module docstring)."""

    d: list[int]
    a: float = float("nan")
    a_err: float = float("nan")
    b: float = float("nan")
    b_err: float = float("nan")
    chi2_dof: float = float("nan")
    const: float = float("nan")
    const_err: float = float("nan")
    const_chi2_dof: float = float("nan")


def wls(A: np.ndarray, y: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted least squares: coefficients, their covariance (Birge-inflated), chi2/dof."""
    w = 1.0 / err**2
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    coef = cov @ (A.T @ (w * y))
    dof = len(y) - A.shape[1]
    chi2 = float(np.sum(w * (y - A @ coef) ** 2))
    ratio = chi2 / dof if dof > 0 else float("nan")
    if dof > 0 and ratio > 1:
        cov = cov * ratio
    return coef, cov, ratio


def fit_limit(d, values, errs) -> LimitFit:
    """Fit delta_NN(d) (arrays over d; NaN entries are dropped). Errors must be > 0."""
    d, y, e = (np.asarray(v, float) for v in (d, values, errs))
    ok = np.isfinite(y) & np.isfinite(e)
    d, y, e = d[ok], y[ok], e[ok]
    if (e <= 0).any():
        raise ValueError(f"fit_limit: errors must be > 0, got {e.tolist()}")
    out = LimitFit([int(v) for v in d])
    if len(y) == 0:
        return out
    c, cc, r0 = wls(np.ones((len(y), 1)), y, e)
    out.const, out.const_err, out.const_chi2_dof = float(c[0]), float(np.sqrt(cc[0, 0])), r0
    if len(y) >= 2 and len(set(d.tolist())) >= 2:
        coef, cov, r = wls(np.column_stack([np.ones_like(d), d**-0.5]), y, e)
        out.a, out.b = float(coef[0]), float(coef[1])
        out.a_err, out.b_err = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
        out.chi2_dof = r
    return out


def _statuses(t: xr.Dataset) -> xr.DataArray:
    """delta_nn_status of a thresholds table, or (older files) derived from its reasons."""
    if "delta_nn_status" in t:
        return t["delta_nn_status"].astype(object)
    st = xr.full_like(t["delta_nn"], "not_computed", dtype=object)
    for key, why in json.loads(t.attrs["reasons"]).items():
        tg, a, lo, m, sch = key.split("/")
        val = next((s for p, s in _REASON_STATUS if why.startswith(p)), "not_applicable")
        st.loc[{"target": tg, "activation": a, "loss": lo, "m": int(m[2:]),
                "schedule": sch}] = val
    return st


def cell_status(statuses: list[str]) -> str:
    """The limit status of a cell from its statuses at the computed d."""
    got = [s for s in statuses if s != "not_computed"]
    if not got:
        return "not_computed"
    if "value" in got:
        return "fit"
    return got[0] if len(set(got)) == 1 else "mixed"


def limit_table(tables: list[xr.Dataset]) -> xr.Dataset:
    """Merge thresholds tables (thresholds.nc of several runs, any d) along a new dim ``d`` and
    add delta_nn_inf +- delta_nn_inf_err (a of the a + b/sqrt(d) fit), the constant fit and the
    limit status per cell. Two tables at the same d are merged cell by cell; a cell computed in
    both must agree (ValueError otherwise)."""
    if not tables:
        raise ValueError("limit_table: no tables given")
    by_d: dict[int, list[xr.Dataset]] = {}
    for t in tables:
        t = t.assign(delta_nn_status=_statuses(t))
        by_d.setdefault(int(t.attrs["d"]), []).append(t[["delta_nn", "delta_nn_err",
                                                          "delta_nn_status"]])
    merged = []
    for d, parts in sorted(by_d.items()):
        acc = parts[0]
        for p in parts[1:]:
            acc, p = xr.align(acc, p, join="outer", fill_value={
                "delta_nn": np.nan, "delta_nn_err": np.nan, "delta_nn_status": "not_computed"})
            a_on, p_on = acc["delta_nn_status"] != "not_computed", p["delta_nn_status"] != \
                "not_computed"
            both = a_on & p_on
            clash = both & ((acc["delta_nn_status"] != p["delta_nn_status"])
                            | ~np.isclose(acc["delta_nn"].fillna(-1), p["delta_nn"].fillna(-1)))
            if bool(clash.any()):
                raise ValueError(f"limit_table: two tables at d={d} disagree on a cell they both "
                                 "computed")
            acc = xr.where(p_on & ~a_on, p, acc)
        merged.append(acc.expand_dims(d=[d]))
    fill = {"delta_nn": np.nan, "delta_nn_err": np.nan, "delta_nn_status": "not_computed"}
    ds = xr.concat(merged, dim="d", join="outer", fill_value=fill)
    ds["delta_nn_status"] = ds["delta_nn_status"].astype(object)
    cells = ds["delta_nn"].isel(d=0, drop=True)
    out = {k: xr.full_like(cells, np.nan, dtype=float) for k in
           ("delta_nn_inf", "delta_nn_inf_err", "slope_b", "slope_b_err", "chi2_dof",
            "delta_nn_const", "delta_nn_const_err", "const_chi2_dof")}
    status = xr.full_like(cells, "not_computed", dtype=object)
    dvals = ds["d"].values
    for idx in np.ndindex(cells.shape):
        sel = dict(zip(cells.dims, idx, strict=True))
        cs = cell_status([str(v) for v in ds["delta_nn_status"][sel].values])
        status[sel] = cs
        if cs != "fit":
            continue
        f = fit_limit(dvals, ds["delta_nn"][sel].values, ds["delta_nn_err"][sel].values)
        for k, v in (("delta_nn_inf", f.a), ("delta_nn_inf_err", f.a_err), ("slope_b", f.b),
                     ("slope_b_err", f.b_err), ("chi2_dof", f.chi2_dof),
                     ("delta_nn_const", f.const), ("delta_nn_const_err", f.const_err),
                     ("const_chi2_dof", f.const_chi2_dof)):
            out[k][sel] = v
    ln = {"delta_nn_inf": "delta_NN(d -> inf): a of the weighted fit a + b/sqrt(d)",
          "delta_nn_inf_err": "uncertainty of delta_nn_inf (Birge-inflated when chi2/dof > 1)",
          "slope_b": "b of the fit a + b/sqrt(d)", "slope_b_err": "uncertainty of b",
          "chi2_dof": "chi2 per degree of freedom of the a + b/sqrt(d) fit",
          "delta_nn_const": "weighted mean of delta_NN over d (constant fit)",
          "delta_nn_const_err": "uncertainty of delta_nn_const",
          "const_chi2_dof": "chi2 per degree of freedom of the constant fit"}
    for k, v in out.items():
        ds[k] = v.assign_attrs(long_name=ln[k], units="1")
    ds["limit_status"] = status.assign_attrs(
        long_name="fit | none (no negative theta-outlier up to max delta at every d) | "
                  "unconverged (no converged second-phase point at every d) | mixed | "
                  "not_computed", units="1")
    for k, text in (("delta_nn", "delta_NN at d (mean over seeds; NaN: see delta_nn_status)"),
                    ("delta_nn_err", "uncertainty of delta_NN at d (seeds and bracket)"),
                    ("delta_nn_status", "value | none | unconverged | disagree | "
                                        "not_applicable | not_computed, at d")):
        ds[k].attrs.update(long_name=text, units="1")
    ds["d"].attrs.update(long_name="input dimension d", units="1")
    for k in cells.dims:
        ds[k].attrs.update(long_name=k, units="1")
    ds.attrs["max_delta"] = float(max(float(t.attrs["max_delta"]) for t in tables))
    hi_d = {}  # the scan's upper delta at each d (tables at one d: the smallest)
    for t in tables:
        d = int(t.attrs["d"])
        hi_d[d] = min(hi_d.get(d, np.inf), float(t.attrs["max_delta"]))
    ds["max_delta"] = ("d", [hi_d[int(d)] for d in ds["d"].values],
                       {"long_name": "upper end of the delta_NN scan at d", "units": "1"})
    ds.attrs["fit"] = "weighted least squares delta_NN(d) = a + b/sqrt(d) (docs/theory.md s. 7)"
    return ds


_LIMIT_TEXT = {"none": "no finite threshold up to δ = {hi}", "unconverged":
               "no converged second-phase point", "mixed": "mixed (see columns)",
               "disagree": "seeds disagree at every d"}
_D_TEXT = {"none": "none up to δ = {hi}", "unconverged": "not converged",
           "disagree": "seeds disagree", "not_applicable": "theory does not apply"}


def limit_markdown(ds: xr.Dataset) -> str:
    """One Markdown row per computed cell: delta_NN +- err at each d and delta_NN(inf)."""
    his = [float(v) for v in ds["max_delta"].values] if "max_delta" in ds else \
        [float(ds.attrs["max_delta"])] * ds.sizes["d"]
    dvals = [int(v) for v in ds["d"].values]
    head = ("| target / activation / loss / m / schedule | "
            + " | ".join(f"d = {d}" for d in dvals) + " | δ_NN(∞) |")
    rows = [head, "|---|" + "---|" * (len(dvals) + 1)]
    cells = ds["limit_status"]
    for idx in np.ndindex(cells.shape):
        sel = dict(zip(cells.dims, idx, strict=True))
        cs = str(cells[sel].values)
        if cs == "not_computed":
            continue
        key = point_key(*(ds[k].values[i] for k, i in sel.items()))
        cols = []
        for j in range(len(dvals)):
            st = str(ds["delta_nn_status"][sel].isel(d=j).values)
            v, e = (float(ds[k][sel].isel(d=j)) for k in ("delta_nn", "delta_nn_err"))
            cols.append(f"{v:.2f} ± {e:.2f}" if st == "value" else
                        "–" if st == "not_computed" else
                        _D_TEXT.get(st, st).format(hi=f"{his[j]:g}"))
        if cs == "fit":
            a, e = float(ds["delta_nn_inf"][sel]), float(ds["delta_nn_inf_err"][sel])
            c, ce = float(ds["delta_nn_const"][sel]), float(ds["delta_nn_const_err"][sel])
            lim = (f"**{a:.2f} ± {e:.2f}** (const {c:.2f} ± {ce:.2f})" if np.isfinite(a)
                   else f"const {c:.2f} ± {ce:.2f} (one d)")
        else:
            # "none" holds up to the smallest scan end among the d where it was found
            done = [his[j] for j in range(len(dvals))
                    if str(ds["delta_nn_status"][sel].isel(d=j).values) == "none"]
            lim = _LIMIT_TEXT.get(cs, cs).format(hi=f"{min(done or his):g}")
        rows.append(f"| {key} | " + " | ".join(cols) + f" | {lim} |")
    return "\n".join(rows)
