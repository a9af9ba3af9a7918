"""Helpers the Snakefile calls: output paths, config slices, run lists and job resources.

Path layout under ``results_dir`` (R):
  R/<exp>/train/<run>.nc     one GD run          R/<exp>/hessian/<run>.nc   its Hessian spectra
  R/<exp>/escape/<run>.nc    its escape prediction (deltann.escape)
  R/<exp>/sweep.nc           the aggregate       R/figures/<fig>.{png,pdf}   figures
  R/logs/..., R/benchmarks/...  per-job logs and Snakemake benchmark files
"""

from __future__ import annotations

from pathlib import Path

from . import resources
from .figures import input_roles, module_path
from .source import rule_code
from .sweep import expand, n_samples, parse_run_id, run_id

__all__ = ["Layout"]


class Layout:
    """Paths, slices and resources of a validated config (see ``deltann.config``)."""

    def __init__(self, config: dict):
        self.config = config
        self.root = Path(config["results_dir"])

    # --- config slices (only what a rule needs, so Snakemake reruns on relevant changes) ---
    def exp_slice(self, exp: str) -> dict:
        if exp not in self.config["experiments"]:
            known = sorted(self.config["experiments"])
            raise KeyError(f"unknown experiment {exp!r}; known: {known}")
        return {"experiment": exp, "base_seed": self.config["base_seed"],
                **self.config["experiments"][exp]}

    def fig_slice(self, fig: str) -> dict:
        return {"figure": fig, **self.config["figures"][fig]}

    # --- paths ---
    def run_ids(self, exp: str) -> list[str]:
        return [run_id(p) for p in expand(self.exp_slice(exp))]

    def path(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def train_files(self, exp: str) -> list[str]:
        return [self.path(exp, "train", f"{r}.nc") for r in self.run_ids(exp)]

    def hessian_files(self, exp: str) -> list[str]:
        if not self.config["experiments"][exp]["hessian"]["steps"]:
            return []
        return [self.path(exp, "hessian", f"{r}.nc") for r in self.run_ids(exp)]

    def escape_files(self, exp: str) -> list[str]:
        if not self.config["experiments"][exp]["predictor"]["enabled"]:
            return []
        return [self.path(exp, "escape", f"{r}.nc") for r in self.run_ids(exp)]

    def sweep_file(self, exp: str) -> str:
        return self.path(exp, "sweep.nc")

    def theory_file(self, exp: str) -> str:
        return self.path(exp, "theory.nc")

    def trajectory_file(self, exp: str) -> str:
        return self.path(exp, "trajectory.nc")

    def thresholds_file(self) -> str:
        return self.path("thresholds.nc")

    def thresholds_slice(self, target: str | None = None) -> dict:
        """The thresholds config (of one target, when given: its job reruns only if it changes)."""
        out = {"base_seed": self.config["base_seed"], **self.config["thresholds"]}
        if target is not None:
            if target not in out["target"]:
                raise KeyError(f"target {target!r} is not in thresholds.target {out['target']}")
            out["target"] = [target]
        return out

    def threshold_cell_files(self) -> list[str]:
        """One file per computed cell of the thresholds table: thresholds/<target>/<cell>.nc."""
        from .theory.table import table_cells

        thr = self.config["thresholds"]
        return [self.path("thresholds", t, f"{c}.nc") for t in thr["target"]
                for c in table_cells(thr, t)]

    def threshold_cell_slice(self, target: str, cell: str) -> dict:
        """The config of one cell's job (it reruns only if that cell's settings change)."""
        from .theory.table import cell_slice

        return cell_slice(self.thresholds_slice(target), target, cell)

    def figure_inputs(self, fig: str) -> dict[str, str]:
        """The NetCDF files a figure reads, by role (``figures.input_roles``): sweep.nc,
        theory.nc, thresholds.nc, and ``check_<exp>`` sweeps for the architecture figure."""
        f = self.config["figures"][fig]
        exps = self.config["experiments"]
        files = {}
        for role in input_roles(f["kind"], f, exps):
            if role == "sweep":
                files[role] = self.sweep_file(f["experiment"])
            elif role == "theory":
                files[role] = self.theory_file(f["experiment"])
            elif role == "thresholds":
                files[role] = self.thresholds_file()
            elif role == "trajectory":
                files[role] = self.trajectory_file(f["experiment"])
            else:  # check_<experiment>
                files[role] = self.sweep_file(role.removeprefix("check_"))
        return files

    def figure_files(self, fig: str) -> list[str]:
        return [self.path("figures", f"{fig}.{ext}") for ext in ("png", "pdf")]

    def code(self, rule: str) -> str:
        """Hash of the package source ``rule`` runs (a param: code edits rerun its jobs)."""
        return rule_code(rule)

    def figure_code(self, fig: str) -> str:
        return rule_code("figure", self.config["figures"][fig]["kind"])

    def figure_module(self, fig: str) -> str:
        return module_path(self.config["figures"][fig]["kind"])

    def all_targets(self) -> list[str]:
        out = [self.sweep_file(e) for e in self.config["experiments"]]
        out += [self.theory_file(e) for e, x in self.config["experiments"].items()
                if x["theory"]["enabled"]]
        out += [self.trajectory_file(e) for e, x in self.config["experiments"].items()
                if x["trajectory"]["enabled"]]
        if self.config["thresholds"]["enabled"]:
            out.append(self.thresholds_file())
        for fig in self.config["figures"]:
            out += self.figure_files(fig)
        return out

    # --- resources (functions of the run's sizes and the attempt) ---
    def train_mem_mb(self, exp: str, run: str, attempt: int) -> int:
        return resources.train_mem_mb(parse_run_id(run), self.exp_slice(exp)["n_test"], attempt)

    def train_runtime(self, exp: str, run: str) -> int:
        return resources.train_runtime_min(parse_run_id(run),
                                           self.exp_slice(exp)["train"]["steps"])

    def escape_runtime(self, exp: str, run: str) -> int:
        """Projected GD plus one HVP per step: ~3 GD runs."""
        return 3 * self.train_runtime(exp, run)

    def hessian_mem_mb(self, exp: str, run: str, attempt: int) -> int:
        e = self.exp_slice(exp)
        p = parse_run_id(run)
        hc = e["hessian"]
        dense = hc["method"] == "dense" or (hc["method"] == "auto"
                                            and p.m * p.d <= hc["dense_max"])
        return resources.hessian_mem_mb(p, e["n_test"], dense, attempt)

    def theory_runtime(self, exp: str) -> int:
        """Curves (d x delta x seed points) plus the estimator's scans per d, each point costed
        at its worst case (transient + the whole budget)."""
        e = self.exp_slice(exp)
        tc = e["theory"]
        pts = [(m, d, n_samples(d, dl)) for m in e["width"] for d in tc["d"]
               for dl in tc["deltas"]] * int(tc["seeds"]) * len(e["target"])
        hi = max(tc["delta_range"])
        evals = (int(tc["n_grid"]) + int(tc["refine"])) * int(tc["seeds"])
        pts += [(m, d, n_samples(d, hi)) for m in e["width"] for d in tc["d"]] \
            * evals * len(e["target"])
        return resources.second_phase_runtime_min(pts, resources.point_steps(tc))

    def trajectory_runtime(self, exp: str) -> int:
        """Projected GD to t_max for each (m, delta, seed), plus the dense points."""
        e = self.exp_slice(exp)
        tc = e["trajectory"]
        d = int(tc["d"])
        pts = [(m, d, n_samples(d, dl)) for m in e["width"] for dl in tc["deltas"]] \
            * int(tc["seeds"]) * len(e["target"])
        return resources.second_phase_runtime_min(pts, int(tc["t_max"]), len(tc["dense"]) or 1)

    def threshold_cell_runtime(self, target: str, cell: str, attempt: int = 1) -> int:
        """One cell: per seed, the delta grid (each point at its own n) plus ``refine``
        bisections (costed at the grid's middle delta), every point at its whole budget;
        ``attempt`` times that for a retried job."""
        import numpy as np

        from .theory.table import parse_cell

        c = self.threshold_cell_slice(target, cell)
        m, d = parse_cell(cell)[2], int(c["d"])
        lo, hi = (float(v) for v in c["delta_range"])
        grid = np.geomspace(lo, hi, int(c["n_grid"]))
        deltas = [*grid, *[float(np.median(grid))] * int(c["refine"])]
        pts = [(m, d, n_samples(d, x)) for x in deltas] * int(c["seeds"])
        return attempt * resources.second_phase_runtime_min(pts, resources.point_steps(c), 1,
                                                            dense=False)

    def hessian_runtime(self, exp: str, run: str) -> int:
        e = self.exp_slice(exp)
        return resources.hessian_runtime_min(parse_run_id(run), len(e["hessian"]["steps"]))
