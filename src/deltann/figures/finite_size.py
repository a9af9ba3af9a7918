"""Finite-size scaling of GD's transition: delta_GD(d) against d (log axis) per schedule and width,
the escape predictor's delta_pred(d) (dashed, when the sweeps carry ``pred_*``), the fit
alpha + beta ln d (dotted), and the theory's delta_NN(d) and its d -> infinity limit a + b/sqrt(d)
as a band (from the ``experiment``'s theory.nc, when given), and the delta_NN(d) and
delta_NN(inf) of a ``limit`` table (``deltann table``, e.g. the threshold study's
results_study_limit.nc: its line replaces the theory.nc one). Sweeps: ``checks`` (any d and
schedule each; ``deltann.finite_size``), at the default initialisation (init_scale = a_init = 1;
the ``initialisation`` kind draws the others).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..finite_size import fit_log_d, transition_rows
from ..sweep import INIT_DEFAULTS
from ..theory.limit import fit_limit
from .style import PALETTE, plural

MARKERS = "osD^v<>"
REQUIRES = {
    "checks": {"variables": ("hard_overlap", "diverged", "step"),
               "dims": ("target", "activation", "loss", "m", "d", "delta", "seed", "step"),
               "attrs": ("experiment", "config")},
    "theory": {"variables": ("delta_nn", "delta_nn_err"), "dims": ("m", "d"),
               "attrs": ("config",)},
    "limit": {"variables": ("delta_nn", "delta_nn_err", "delta_nn_inf", "delta_nn_inf_err"),
              "dims": ("d", "target", "activation", "loss", "m", "schedule")},
}


def _limit_lines(tab, schedule: str, cell: dict) -> dict:
    """m -> (d, delta_NN(d), err, delta_NN(inf), err) of a ``deltann table`` file for one
    schedule and (target, activation, loss); {} where the table has none of it."""
    if tab is None or schedule not in tab["schedule"].values:
        return {}
    try:
        r = tab.sel(schedule=schedule, **{k: cell[k] for k in ("target", "activation", "loss")})
    except KeyError:
        return {}
    out = {}
    for m in r["m"].values:
        x = r.sel(m=m)
        y, e = x["delta_nn"].values, x["delta_nn_err"].values
        if np.isfinite(y).any() or np.isfinite(float(x["delta_nn_inf"])):
            out[int(m)] = (x["d"].values, y, e, float(x["delta_nn_inf"]),
                           float(x["delta_nn_inf_err"]))
    return out


def _theory_lines(th, schedule: str):
    """m -> (d, delta_NN(d), err, LimitFit) of theory.nc, if its schedule is ``schedule``."""
    import json

    if th is None or json.loads(th.attrs["config"])["train"]["schedule"] != schedule:
        return {}
    out = {}
    for m in th["m"].values:
        r = th.sel(m=m)
        r = r.isel({k: 0 for k in ("target", "activation", "loss") if k in r.dims})
        r = r.sel({k: v for k, v in INIT_DEFAULTS.items() if k in r.dims})  # the default init
        d = r["d"].values
        y, e = r["delta_nn"].values, r["delta_nn_err"].values
        fit = fit_limit(list(d), list(y), list(e)) if np.isfinite(y).sum() >= 2 else None
        out[int(m)] = (d, y, e, fit)
    return out


def draw(data, cfg):
    sweeps = [ds for role, ds in sorted(data.items()) if role.startswith("check_")]
    if not sweeps:
        raise ValueError(f"figure {cfg.get('figure', 'finite_size')!r}: list the sweeps to "
                         "draw in 'checks'")
    rows = [r for r in transition_rows(sweeps)  # the default initialisation (see kind
            if all(r[k] == v for k, v in INIT_DEFAULTS.items())]  # initialisation for others)
    fits = fit_log_d(rows)
    scheds = sorted({r["schedule"] for r in rows})
    widths = sorted({r["m"] for r in rows})
    fig, axes = plt.subplots(1, len(scheds), figsize=(5.6 * len(scheds), 5.6), squeeze=False,
                             layout="constrained", sharey=True)
    dall = sorted({r["d"] for r in rows})
    dgrid = np.geomspace(min(dall) / 1.3, max(dall) * 4, 60)
    for ax, sch in zip(axes[0], scheds, strict=True):
        th = _theory_lines(data.get("theory"), sch)
        tab = _limit_lines(data.get("limit"), sch,
                           next(r for r in rows if r["schedule"] == sch))
        for j, m in enumerate(widths):
            c, mk = PALETTE[j % len(PALETTE)], MARKERS[j % len(MARKERS)]
            rs = [r for r in rows if r["schedule"] == sch and r["m"] == m]
            if not rs:
                continue
            d = np.array([r["d"] for r in rs], float)
            y = np.array([r["delta_gd"] for r in rs])
            e = np.array([r["delta_gd_err"] for r in rs])
            ok = np.isfinite(y)
            ax.errorbar(d[ok], y[ok], yerr=e[ok], fmt=mk + "-", color=c, capsize=3,
                        label=f"GD, m={m}")
            hi = np.array([max(r["deltas"]) for r in rs])
            if (~ok).any():  # no transition up to the grid's end: an arrow at the end
                ax.plot(d[~ok], hi[~ok], "^", color=c, ms=8, mfc="none",
                        label=f"GD, m={m}: none up to δ = {hi[~ok].min():g}")
            pr = [(dv, r) for dv, r in zip(d, rs, strict=True) if "delta_pred" in r]
            if pr:  # only the d whose sweeps carry the predictor (it may not be run at all d)
                dp = np.array([dv for dv, _ in pr])
                yp = np.array([r["delta_pred"] for _, r in pr])
                ep = np.array([r["delta_pred_err"] for _, r in pr])
                hp = np.array([max(r["deltas"]) for _, r in pr])
                okp = np.isfinite(yp)
                if okp.any():
                    ax.errorbar(dp[okp] * 1.04, yp[okp], yerr=ep[okp], fmt=mk + "--", color=c,
                                mfc="none", capsize=2, alpha=0.8, label=f"predictor, m={m}")
                if (~okp).any():
                    ax.plot(dp[~okp] * 1.04, hp[~okp], "^", color=c, ms=6, alpha=0.6,
                            label=f"predictor, m={m}: none up to δ = {hp[~okp].min():g}")
            f = [v for k, v in fits.items() if k[0] == sch and k[4] == m]
            if f and f[0].n >= 2:
                ax.plot(dgrid, f[0](dgrid), ":", color=c, lw=1.2,
                        label=f"fit {f[0].alpha:.2f} + {f[0].beta:.2f}±{f[0].beta_err:.2f} ln d")
            if m in th:
                td, ty, te, lim = th[m]
                okt = np.isfinite(ty)
                if okt.any():
                    ax.errorbar(td[okt], ty[okt], yerr=te[okt], fmt="*", color=c, ms=9,
                                capsize=2, label=f"δ_NN(d) theory, m={m}")
                if lim is not None and np.isfinite(lim.a) and not (
                        m in tab and np.isfinite(tab[m][3])):  # the table's line wins
                    ax.axhspan(lim.a - lim.a_err, lim.a + lim.a_err, color=c, alpha=0.12)
                    ax.axhline(lim.a, color=c, lw=1, alpha=0.7,
                               label=f"δ_NN(∞) = {lim.a:.2f} ± {lim.a_err:.2f}, m={m} "
                                     f"(d = {', '.join(str(int(v)) for v in lim.d)})")
            if m in tab:
                td, ty, te, a, ae = tab[m]
                okt = np.isfinite(ty)
                if okt.any():
                    ax.errorbar(td[okt] * 0.96, ty[okt], yerr=te[okt], fmt="P", color=c, ms=7,
                                mfc="none", capsize=2, label=f"δ_NN(d) table, m={m}")
                if np.isfinite(a):
                    ax.axhspan(a - ae, a + ae, color=c, alpha=0.12)
                    ax.axhline(a, color=c, lw=1, alpha=0.7,
                               label=f"δ_NN(∞) = {a:.2f} ± {ae:.2f}, m={m} (table, d = "
                                     f"{', '.join(str(int(v)) for v in td[okt])})")
        seeds = sorted({r["seeds"] for r in rows if r["schedule"] == sch})
        by_d = sorted({r["d"]: r["steps"] for r in rows if r["schedule"] == sch}.items())
        parts = [f"{v} (d={d})" for d, v in by_d]
        steps = (f"{by_d[0][1]}" if len({v for _, v in by_d}) == 1 else
                 ",\n".join(", ".join(parts[i:i + 3]) for i in range(0, len(parts), 3)))
        nseeds = (plural(seeds[-1], "seed") if len(seeds) == 1 else
                  f"{seeds[0]}–{seeds[-1]} seeds")
        ax.set_xscale("log")
        ax.set_xticks(dall, [str(v) for v in dall])
        ax.minorticks_off()
        ax.set_xlabel("d")
        ax.set_title(f"schedule {sch}: {nseeds}\nsteps {steps}", fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    axes[0][0].set_ylabel("transition δ (seed-mean final hard overlap = 1/2)")
    fig.suptitle("Where GD learns the hard direction, against d")
    return fig
