"""Helpers the Snakefile calls: output paths, config slices, run lists and job resources.

Path layout under ``results_dir`` (R):
  R/<exp>/train/<run>.nc     one GD run          R/<exp>/hessian/<run>.nc   its Hessian spectra
  R/<exp>/escape/<run>.nc    its escape prediction (deltann.escape)
  R/<exp>/sweep.nc           the aggregate       R/figures/<fig>.{png,pdf}   figures
  R/logs/..., R/benchmarks/...  per-job logs and Snakemake benchmark files
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from . import resources
from .figures import input_roles, module_path
from .source import rule_code
from .sweep import data_key, expand, n_samples, parse_run_id, run_id

__all__ = ["Layout", "RuleSpec"]

_FLOOR_MIN = 30  # minutes added to a split job's estimate (start-up, I/O, a slow node)


def _canonical(x):
    """``x`` with every mapping's keys sorted (recursively): a rule's params then do not depend
    on the order of keys in the config file (Snakemake compares their text)."""
    if isinstance(x, dict):
        return {k: _canonical(x[k]) for k in sorted(x)}
    return [_canonical(v) for v in x] if isinstance(x, list) else x


class RuleSpec(NamedTuple):
    """What differs between the rules of one per-run kind (``Layout.job_rules``)."""

    name: str
    input: object
    output: object
    log: str
    benchmark: str
    mem_mb: object
    runtime: object
    cfg: object
    message: str


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
        return _canonical({"experiment": exp, "base_seed": self.config["base_seed"],
                           **self.config["experiments"][exp]})

    def fig_slice(self, fig: str) -> dict:
        return {"figure": fig, **self.config["figures"][fig]}

    # --- paths ---
    def run_ids(self, exp: str) -> list[str]:
        return [run_id(p) for p in expand(self.exp_slice(exp))]

    def path(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def train_files(self, exp: str) -> list[str]:
        return [self.path(exp, "train", f"{r}.nc") for r in self.run_ids(exp)]

    #: rules whose runs can share a job (config key ``batch``), with their per-run files
    BATCH_RULES = ("train", "hessian", "escape")

    def batches(self, rule: str = "train") -> list[tuple[str, str, list[str]]]:
        """(experiment, batch id, run ids) of every job of more than one run of ``rule`` (one of
        ``BATCH_RULES``; ``batch.runs`` > 1; the other runs have a job each).

        Per experiment (those that have the rule's outputs), runs are taken in order of their
        samples (``sweep.data_key``) and packed greedily into jobs of at most ``runs`` runs
        whose estimate (``batch_runtime``) fits ``max_job_hours``; runs on the same samples start
        a new job rather than be split, unless they alone are more than a job holds.
        """
        size = int(self.config["batch"]["runs"])
        if size <= 1:
            return []
        has = {"train": self.train_files, "hessian": self.hessian_files,
               "escape": self.escape_files}[rule]
        out = []
        for exp in self.config["experiments"]:
            if not has(exp):
                continue
            groups: dict[tuple, list[str]] = {}
            for p in expand(self.exp_slice(exp)):
                groups.setdefault(data_key(p), []).append(run_id(p))
            jobs: list[list[str]] = [[]]
            for group in groups.values():
                if jobs[-1] and not self._fits(rule, exp, jobs[-1] + group, size):
                    jobs.append([])
                for r in group:
                    if jobs[-1] and not self._fits(rule, exp, jobs[-1] + [r], size):
                        jobs.append([])
                    jobs[-1].append(r)
            out += [(exp, f"batch{i}", j) for i, j in enumerate(jobs) if len(j) > 1]
        return out

    def _fits(self, rule: str, exp: str, runs: list[str], size: int) -> bool:
        return len(runs) <= size and self.batch_runtime(rule, exp, runs) <= self.max_job_minutes

    def batch_runtime(self, rule: str, exp: str, runs: list[str]) -> int:
        """Runtime (minutes) of a job of several runs: their estimates with one floor."""
        est = {"train": self.train_runtime, "hessian": self.hessian_runtime,
               "escape": self.escape_runtime}[rule]
        floor = resources.TRAIN_FLOOR_MIN * (3 if rule == "escape" else 1)
        return int(floor + sum(est(exp, r) - floor for r in runs))

    def batch_mem_mb(self, rule: str, exp: str, runs: list[str], attempt: int) -> int:
        """Memory of a job of several runs: its largest run plus the others' work arrays."""
        one = {"train": self.train_mem_mb, "hessian": self.hessian_mem_mb,
               "escape": self.train_mem_mb}[rule]
        n_test = self.exp_slice(exp)["n_test"]
        mems = [one(exp, r, attempt) for r in runs]
        big = max(range(len(runs)), key=mems.__getitem__)
        return int(mems[big] + attempt * sum(resources.train_work_mb(parse_run_id(r), n_test)
                                             for i, r in enumerate(runs) if i != big))

    def job_rules(self, rule: str) -> list[RuleSpec]:
        """The rules of one per-run kind (``BATCH_RULES``): the wildcard rule itself (one job per
        run: ``train``, ``hessian``, ``escape``) and one ``<rule>_batch_<i>`` per job of several
        runs (``batches``). The Snakefile defines them all from one template, so a run's job has
        the same script, params and code whichever rule makes it: changing ``batch.runs``
        reruns nothing."""
        R, what = str(self.root), {"train": "GD run", "hessian": "Hessian spectra",
                                   "escape": "Escape predictor"}[rule]
        train_in = f"{R}/{{exp}}/train/{{run}}.nc" if rule == "hessian" else []
        out = [RuleSpec(
            rule, train_in, f"{R}/{{exp}}/{rule}/{{run}}.nc",
            f"{R}/logs/{{exp}}/{rule}/{{run}}.log", f"{R}/benchmarks/{{exp}}/{rule}/{{run}}.tsv",
            lambda w, attempt: self.batch_mem_mb(rule, w.exp, [w.run], attempt),
            lambda w, attempt: self.batch_runtime(rule, w.exp, [w.run]) * attempt,
            lambda w: self.exp_slice(w.exp), what + " {wildcards.exp}/{wildcards.run}")]
        for i, (exp, bid, runs) in enumerate(self.batches(rule)):
            out.append(RuleSpec(
                f"{rule}_batch_{i}",
                [f"{R}/{exp}/train/{r}.nc" for r in runs] if rule == "hessian" else [],
                [f"{R}/{exp}/{rule}/{r}.nc" for r in runs],
                f"{R}/logs/{exp}/{rule}_batch/{bid}.log",
                f"{R}/benchmarks/{exp}/{rule}_batch/{bid}.tsv",
                self.batch_mem(rule, exp, runs), self.batch_time(rule, exp, runs),
                self.exp_slice(exp), f"{what} {exp}/{bid}: {len(runs)} runs"))
        return out

    def batch_mem(self, rule: str, exp: str, runs: list[str]):
        """``mem_mb`` of a batch rule: a function of Snakemake's attempt."""
        return lambda wildcards, attempt: self.batch_mem_mb(rule, exp, runs, attempt)

    def batch_time(self, rule: str, exp: str, runs: list[str]):
        """``runtime`` of a batch rule: its estimate times the attempt."""
        return lambda wildcards, attempt: self.batch_runtime(rule, exp, runs) * attempt

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

    def theory_parts(self, exp: str) -> list[str]:
        """Jobs of theory.nc (``theory.curves.Part`` ids): ``all`` if the whole fits
        ``max_job_hours``; else one per (d, seed), and where that does not fit, its scans
        apart from its curve points, split over the fewest even chunks of deltas that fit."""
        from .theory.curves import Part

        if self.theory_runtime(exp) <= self.max_job_minutes:
            return ["all"]
        tc = self.config["experiments"][exp]["theory"]
        out = []
        for d in (int(v) for v in tc["d"]):
            for s in range(int(tc["seeds"])):
                whole = Part(d, s)
                if self.theory_runtime(exp, whole.id) <= self.max_job_minutes:
                    out.append(whole.id)
                    continue
                out.append(Part(d, s, (), True).id)
                n_dl = len(tc["deltas"])
                per = (self.theory_runtime(exp, Part(d, s, tuple(range(n_dl)), False).id)
                       - _FLOOR_MIN) / n_dl
                k = max(1, int((self.max_job_minutes - _FLOOR_MIN) // max(per, 1e-9)))
                n = -(-n_dl // k)
                edges = [round(i * n_dl / n) for i in range(n + 1)]
                out += [Part(d, s, tuple(range(a, b)), False).id
                        for a, b in zip(edges, edges[1:], strict=False)]
        return out

    def theory_part_files(self, exp: str) -> list[str]:
        return [self.path(exp, "theory_parts", f"{p}.nc") for p in self.theory_parts(exp)]

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
        """One file per job of the thresholds table: thresholds/<target>/<part>.nc, a part being
        a computed cell, or a cell's seeds split into chunks that fit ``max_job_hours``."""
        from .theory.table import table_cells

        thr = self.config["thresholds"]
        return [self.path("thresholds", t, f"{p}.nc") for t in thr["target"]
                for c in table_cells(thr, t) for p in self.cell_parts(t, c)]

    def cell_parts(self, target: str, cell: str) -> list[str]:
        """Part ids of one cell: the cell itself if all its seeds fit ``max_job_hours``, else
        the fewest chunks of consecutive seeds that fit (at least one seed each), even sizes."""
        from .theory.table import part_id

        seeds = int(self.config["thresholds"]["seeds"])
        per_seed = self._cell_minutes(target, cell) / seeds
        k = max(1, int((self.max_job_minutes - _FLOOR_MIN) // max(per_seed, 1e-9)))
        if k >= seeds:
            return [cell]
        n = -(-seeds // k)  # as few jobs as fit, seeds spread evenly over them
        edges = [round(i * seeds / n) for i in range(n + 1)]
        return [part_id(cell, range(a, b)) for a, b in zip(edges, edges[1:], strict=False)]

    @property
    def max_job_minutes(self) -> float:
        return 60.0 * float(self.config.get("max_job_hours", 4))

    def threshold_cell_slice(self, target: str, cell: str) -> dict:
        """The config of one cell's (or part's) job: it reruns only if that cell's settings
        change."""
        from .theory.table import cell_slice

        return cell_slice(self.thresholds_slice(target), target, cell)

    def figure_inputs(self, fig: str) -> dict[str, str]:
        """The NetCDF files a figure reads, by role (``figures.input_roles``): sweep.nc,
        theory.nc, thresholds.nc, ``check_<exp>`` sweeps, ``theory_<exp>`` theory files and the
        ``limit`` table (finite_size)."""
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
            elif role == "limit":  # a `deltann table` file given by path (e.g. committed)
                files[role] = f["limit"]
            elif role.startswith("theory_"):
                files[role] = self.theory_file(role.removeprefix("theory_"))
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

    def theory_runtime(self, exp: str, part: str = "all") -> int:
        """Curves (d x delta x seed points, with their dense Hessians) plus the estimator's
        scans per d and seed (each grid point at its own n, the bisections at the grid's
        middle delta), every point at its whole budget; of one part (``theory_parts``) when
        given. 30 min added."""
        from .theory.curves import Part

        e = self.exp_slice(exp)
        tc = e["theory"]
        p = Part.parse(part)
        ds_ = [p.d] if p else [int(v) for v in tc["d"]]
        n_seeds = 1 if p else int(tc["seeds"])
        dls = [x for i, x in enumerate(tc["deltas"]) if p is None or p.curves is None
               or i in p.curves]
        copies = n_seeds * len(e["target"]) * len(e["init_scale"]) * len(e["a_init"])
        curves = [(m, d, n_samples(d, dl)) for m in e["width"] for d in ds_
                  for dl in dls] * copies
        deltas = resources.scan_deltas(tc)
        scans = [(m, d, n_samples(d, x)) for m in e["width"] for d in ds_
                 for x in deltas] * copies if p is None or p.scan else []
        steps = resources.point_steps(tc)
        return int(_FLOOR_MIN + resources.second_phase_minutes(curves, steps)
                   + resources.second_phase_minutes(scans, steps, dense=False))

    def trajectory_runtime(self, exp: str) -> int:
        """Projected GD to t_max for each (m, delta, seed), plus the dense points."""
        e = self.exp_slice(exp)
        tc = e["trajectory"]
        d = int(tc["d"])
        pts = [(m, d, n_samples(d, dl)) for m in e["width"] for dl in tc["deltas"]] \
            * int(tc["seeds"]) * len(e["target"])
        return resources.second_phase_runtime_min(pts, int(tc["t_max"]), len(tc["dense"]) or 1)

    def _cell_minutes(self, target: str, cell: str) -> float:
        """Worst-case minutes of a cell's (or part's) seeds: per seed the delta grid (each
        point at its own n) plus ``refine`` bisections (at the grid's middle delta), every
        point at its whole budget, no floor."""

        from .theory.table import parse_cell, parse_part

        c = self.threshold_cell_slice(target, cell)
        base, ids = parse_part(cell)
        m, d = parse_cell(base)[2], int(c["d"])
        deltas = resources.scan_deltas(c)
        n_seeds = len(ids) if ids is not None else int(c["seeds"])
        pts = [(m, d, n_samples(d, x)) for x in deltas] * n_seeds
        return resources.second_phase_minutes(pts, resources.point_steps(c), 1, dense=False)

    def threshold_cell_runtime(self, target: str, cell: str, attempt: int = 1) -> int:
        """Runtime request of one cell's (or part's) job: ``_cell_minutes`` plus 30 min,
        ``attempt`` times that for a retried job."""
        return attempt * int(_FLOOR_MIN + self._cell_minutes(target, cell))

    def hessian_runtime(self, exp: str, run: str) -> int:
        e = self.exp_slice(exp)
        return resources.hessian_runtime_min(parse_run_id(run), len(e["hessian"]["steps"]))
