"""The deltann command line: targets | threshold | table | gd-threshold | finite-size | provenance.

User errors (bad arguments) print one line naming the argument and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from .phases import STUCK_QTOL
from .targets import TARGETS

__all__ = ["main"]


def _targets(args) -> int:
    rows = [{"name": t.name, "k": t.k, "formula": t.formula, "easy": list(t.easy),
             "hard": list(t.hard), "bounded": t.bounded} for t in TARGETS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<14} {'k':>2}  {'easy':<8} {'hard':<8} {'bounded':<8} formula")
    for r in rows:
        print(f"{r['name']:<14} {r['k']:>2}  {str(r['easy']):<8} {str(r['hard']):<8} "
              f"{str(r['bounded']):<8} {r['formula']}")
    return 0


def _provenance(args) -> int:
    from .io import REQUIRED_GLOBAL_ATTRS

    ds = _load("provenance", args.file)
    if ds is None:
        return 2
    missing = [k for k in REQUIRED_GLOBAL_ATTRS if k not in ds.attrs]
    if len(missing) == len(REQUIRED_GLOBAL_ATTRS):
        print(f"deltann provenance: error: {args.file}: no provenance attributes: not a deltann "
              "output", file=sys.stderr)
        return 2
    out = {k: ds.attrs[k] for k in ds.attrs if k != "config"}
    out["config"] = json.loads(ds.attrs["config"]) if "config" in ds.attrs else None
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        for k, v in out.items():
            lines = str(v).splitlines()
            if k == "seed_entropy" and len(lines) > 4:  # a sweep lists every run's seeds
                v = "\n  ".join([*lines[:3], f"... {len(lines)} runs in all (--json prints "
                                              "every one)"])
            print(f"{k}: {json.dumps(v) if k == 'config' else v}")
    if missing:
        print(f"{args.file}: missing provenance attributes {missing}", file=sys.stderr)
        return 1
    return 0


def _positive_int(name):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be an integer >= 1, got {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 1, got {v}")
        return v
    return parse


def _finite(name, minimum=None, strict=False):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {text!r}") \
                from None
        ok = math.isfinite(v) and (minimum is None or (v > minimum if strict else v >= minimum))
        if not ok:
            bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
            raise argparse.ArgumentTypeError(f"{name} must be a finite number{bound}, got {text}")
        return v
    return parse


def _range(text):
    parts = text.split(",")
    try:
        lo, hi = (float(x) for x in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--deltas must be LO,HI (two numbers), got {text!r}") \
            from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise argparse.ArgumentTypeError(f"--deltas must satisfy 0 < LO < HI, got {text!r}")
    return lo, hi


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line naming the argument and what is allowed, exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Progress:
    """Progress lines on stderr with an estimate of the remaining time."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self, done, total, message):
        el = time.perf_counter() - self.t0
        left = el / done * max(total - done, 0)
        print(f"[{done}/<={total}] {message}; ~{left:.0f}s left at most", file=sys.stderr,
              flush=True)


def _threshold(args) -> int:
    from .theory.second_phase import PointConfig
    from .theory.threshold import delta_nn

    point = PointConfig(schedule=args.schedule, lr=args.lr, method=args.method,
                        budget=args.budget, init_scale=args.init_scale, a_init=args.a_init)
    print(f"delta_NN of {args.target}/{args.activation}/{args.loss} m={args.width} "
          f"{args.schedule} init_scale={args.init_scale:g} a_init={args.a_init:g} at d={args.d}, "
          f"{args.seeds} seed(s) (docs/theory.md section 7)",
          file=sys.stderr, flush=True)
    res = delta_nn(args.target, args.activation, args.loss, args.width, d=args.d, point=point,
                   seeds=args.seeds, delta_range=args.deltas, n_grid=args.n_grid,
                   refine=args.refine, base_seed=args.base_seed, noise=args.noise,
                   progress=_Progress())
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        fmt = lambda v: "not defined" if v is None else f"{v:.4g}"  # noqa: E731
        err = "" if res.delta_nn_err is None else f" +- {res.delta_nn_err:.2g}"
        print(f"delta_alg = {fmt(res.delta_alg)}")
        print(f"delta_NN  = {fmt(res.delta_nn)}{err}   (d={res.d}, converged={res.converged})")
        print(f"  {res.reason}")
    return 0


def _load(cmd: str, path: str, variables=(), attrs=()):
    """A result file checked for what ``cmd`` reads (io.read_result); None after printing one
    line on a missing, unreadable or foreign file."""
    from .io import ResultFileError, read_result

    try:
        return read_result(path, variables=variables, attrs=attrs, what=f"deltann {cmd}")
    except (FileNotFoundError, ResultFileError) as err:
        print(f"deltann {cmd}: error: {str(err).removeprefix(f'deltann {cmd}: ')}",
              file=sys.stderr)
        return None


def _table(args) -> int:
    from .io import provenance_attrs, write_netcdf
    from .theory.limit import limit_markdown, limit_table

    tables = [_load("table", f, ("delta_nn", "delta_nn_err"), ("reasons", "d", "max_delta"))
              for f in args.files]
    if any(t is None for t in tables):
        return 2
    try:
        ds = limit_table(tables)
    except ValueError as err:
        print(f"deltann table: error: {err}", file=sys.stderr)
        return 2
    if args.out:
        srcs = [str(f) for f in args.files]
        ds.attrs.update(provenance_attrs(
            "deltann delta_NN over d and its d -> inf limit", {"sources": srcs},
            "; ".join(str(t.attrs.get("seed_entropy", "")) for t in tables),
            "deltann table " + " ".join(srcs)), sources=json.dumps(srcs))
        write_netcdf(ds, args.out)
        print(f"deltann table: wrote {args.out}", file=sys.stderr)
    print(limit_markdown(ds))
    return 0


def _gd_threshold(args) -> int:
    from .phases import gd_transitions

    ds = _load("gd-threshold", args.file, ("hard_overlap", "diverged", "delta", "seed"))
    if ds is None:
        return 2
    rows = gd_transitions(ds)
    if args.json:
        print(json.dumps(rows, default=float))
        return 0
    for r in rows:
        where = "/".join(str(r[k]) for k in ("target", "activation", "loss") if k in r)
        dgd = r["delta_gd"]
        sem = "" if not math.isfinite(r["seed_sem"]) else f" ± {r['seed_sem']:.2f} (seed s.e.)"
        txt = "never crosses" if not math.isfinite(dgd) else f"{dgd:.2f}{sem}"
        if r["below_grid"]:
            txt = f"<= {dgd:g} (seed-mean overlap already >= 1/2 at the lowest delta)"
        means = ", ".join(f"{m:.2f}" for m in r["mean_overlap"])
        flag = "" if r["monotone"] else "; NOT monotone: the mean falls below 1/2 again"
        print(f"{where} m={r.get('m')} d={r.get('d')}: delta_GD = {txt}; bracket "
              f"{r['bracket']}; {r['seeds']} seeds; seed-mean final overlap [{means}]{flag}")
    return 0


def _compare(args, sweeps) -> int:
    """``deltann finite-size A... --compare B...``: each B against the A at its place."""
    from .finite_size import compare_sweeps, compare_text

    if len(args.compare) != len(sweeps):
        print(f"deltann finite-size: --compare needs one file per SWEEP_NC ({len(sweeps)} "
              f"given, {len(args.compare)} to compare)", file=sys.stderr)
        return 2
    others = [_load("finite-size", f, ("hard_overlap", "diverged"), ("config",))
              for f in args.compare]
    if any(o is None for o in others):
        return 2
    out = []
    for fa, a, fb, b in zip(args.files, sweeps, args.compare, others, strict=True):
        try:
            rep = compare_sweeps(a, b, flat_tol=args.stuck_qtol)
        except ValueError as e:
            print(f"deltann finite-size: {fa} against {fb}: {e}", file=sys.stderr)
            return 2
        out.append({"a": str(fa), "b": str(fb), **rep})
        if args.json:
            continue
        print(f"{fb} against {fa}:\n{compare_text(rep)}")
    if args.json:
        print(json.dumps(out, default=float))
    return 0


def _finite_size(args) -> int:
    from .finite_size import (
        at_step,
        fit_plateaus,
        nn_reference,
        plateau_fit_markdown,
        plateau_rows,
        replay_early_stop,
        rows_dataset,
        rows_markdown,
        theory_markdown,
        theory_points,
        transition_rows,
    )
    from .io import write_netcdf

    sweeps = [_load("finite-size", f, ("hard_overlap", "diverged", "train_risk", "test_risk"),
                    ("config",)) for f in args.files]
    if any(s is None for s in sweeps):
        return 2
    if args.at_step is not None:
        for i, (f, s) in enumerate(zip(args.files, sweeps, strict=True)):
            try:
                sweeps[i] = at_step(s, args.at_step)
            except ValueError as e:
                print(f"deltann finite-size: --at-step {args.at_step}: {f}: {e}",
                      file=sys.stderr)
                return 2
    theories = [_load("finite-size", f, ("delta_nn", "delta_nn_err"), ("config",))
                for f in args.theory]
    if any(t is None for t in theories):
        return 2
    if args.compare:
        return _compare(args, sweeps)
    if args.replay_stuck is not None and args.replay_stop is None:
        print("deltann finite-size: --replay-stuck needs --replay-stop RTOL (the 'escaped' rule "
              "runs alongside)", file=sys.stderr)
        return 2
    if args.replay_stop is not None:
        rep = replay_early_stop(sweeps, args.replay_stop, stuck_after=args.replay_stuck or 0,
                                stuck_qtol=args.stuck_qtol)
        if args.json:
            print(json.dumps(rep, default=float))
        else:
            print(f"early stopping replayed at stop_rtol {rep['stop_rtol']:g}, overlap >= "
                  f"{rep['stop_overlap']:g}: {rep['would_stop']} of {rep['runs']} runs would stop;"
                  f" {rep['fell_below_stop_overlap']} of them fell below {rep['stop_overlap']:g}"
                  f" later ({rep['fell_below_half']} below 1/2); largest change of the final "
                  f"overlap {rep['max_final_change']:.3f}")
            if rep["stuck_after"]:
                print(f"stuck rule from step {rep['stuck_after']} at stuck_qtol "
                      f"{rep['stuck_qtol']:g}: {rep['would_stop_stuck']} runs would stop as stuck;"
                      f" {rep['stuck_escaped_later']} of them ended at or above 1/2; largest "
                      f"later rise of the overlap {rep['stuck_max_rise']:.3f}")
            print(f"{100 * rep['steps_saved']:.0f} % of the stopped runs' steps saved")
        return 0
    rows = transition_rows(sweeps, pred_level=args.pred_level)
    plateaus = plateau_rows(sweeps)
    targets = {str(t) for s in sweeps for t in s["target"].values}
    points = [p for t in theories for p in theory_points(t) if p.get("target", "") in
              targets | {""}]  # a deltann table may hold other targets
    fits = fit_plateaus(plateaus, rows)
    fits_nn = fit_plateaus(plateaus, rows, nn_reference(points)) if points else []
    if args.out:
        ds = rows_dataset(rows)
        ds.attrs["plateaus_json"] = json.dumps(plateaus, default=float)
        ds.attrs["plateau_fits_json"] = json.dumps(fits, default=float)
        ds.attrs["plateau_fits_nn_json"] = json.dumps(fits_nn, default=float)
        ds.attrs["sources"] = json.dumps([str(f) for f in args.files])
        write_netcdf(ds, args.out)
        print(f"deltann finite-size: wrote {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"transitions": rows, "plateaus": plateaus, "plateau_fits": fits,
                          "plateau_fits_nn": fits_nn, "theory": points}, default=float))
        return 0
    print(rows_markdown(rows))
    if points:
        print("\n" + theory_markdown(points))
    if args.plateaus:
        print("\n| schedule | m | d | δ | escaped | median τ_esc | t_fit | plateau τ − t_fit | "
              "predicted τ | test risk on plateau → final |\n" + "|---" * 10 + "|")
        for r in plateaus:
            pt = r.get("pred_tau_median", float("nan"))
            print(f"| {r['schedule']} | {r['m']} | {r['d']} | {r['delta']:g} | "
                  f"{r['escaped']}/{r['seeds']} | {r['tau_median']:.0f} | {r['fit_median']:.0f} "
                  f"| {r['plateau_median']:.0f} | {pt:.0f} | "
                  f"{r['test_plateau']:.3f} → {r['test_final']:.3f} |")
        for ref, fs in (("δ_GD", fits), ("δ_NN", fits_nn)):
            if ref == "δ_NN" and not points:
                continue
            print(f"\nplateau fit: ln(τ − t_fit) = a + b ln(δ − {ref}(d)) + c ln d, over the "
                  f"cells where every seed escaped and δ − {ref}(d) > its error\n")
            print(plateau_fit_markdown(fs, ref) if fs else f"(no cell has {ref}(d))")
    return 0


def main(argv=None) -> int:
    from .activations import ACTIVATIONS
    from .losses import LOSSES
    from .theory.second_phase import METHODS, PointConfig
    from .theory.threshold import ESTIMATOR_DEFAULTS as D
    from .train import SCHEDULES

    PC = PointConfig()
    parser = _Parser(prog="deltann", description="deltann: the phase transition of feature "
                     "learning in two-layer networks (theory side; the experiments run with "
                     "snakemake).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("targets", help="list registered targets (easy/hard latent directions)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_targets)
    p = sub.add_parser("threshold", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="delta_alg and delta_NN +- err of one architecture (theory)",
                       description="delta_NN at the converged second-phase point: per seed, a "
                       "scan of nu(delta) on a log grid and a bisection (docs/theory.md, section "
                       "7). Progress on stderr; the result on stdout.")
    p.add_argument("--target", required=True, choices=list(TARGETS))
    p.add_argument("--activation", default="softplus", choices=list(ACTIVATIONS))
    p.add_argument("--loss", default="square", choices=list(LOSSES))
    p.add_argument("--width", type=_positive_int("--width"), default=2, help="hidden units m")
    p.add_argument("--schedule", default="both", choices=list(SCHEDULES))
    p.add_argument("--init-scale", type=_finite("--init-scale", 0.0, strict=True),
                   default=PC.init_scale, help="first-layer init: W0 ~ N(0, s^2/d)")
    p.add_argument("--a-init", type=_finite("--a-init"), default=PC.a_init,
                   help="second-layer init: a0 = a_init/m")
    p.add_argument("--noise", type=_finite("--noise", 0.0), default=0.0, help="label noise sd")
    p.add_argument("--d", type=_positive_int("--d"), default=D["d"],
                   help="dimension of the second-phase points")
    p.add_argument("--seeds", type=_positive_int("--seeds"), default=D["seeds"])
    p.add_argument("--base-seed", type=int, default=D["base_seed"])
    p.add_argument("--deltas", type=_range, default=D["delta_range"], metavar="LO,HI",
                   help="delta range of the scan")
    p.add_argument("--n-grid", type=_positive_int("--n-grid"), default=D["n_grid"],
                   help="log-grid points of the scan")
    p.add_argument("--refine", type=int, choices=range(0, 20), default=D["refine"],
                   metavar="{0..19}", help="bisection steps per seed")
    p.add_argument("--lr", type=_finite("--lr", 0.0, strict=True), default=PC.lr,
                   help="learning rate of the projected-GD first phase")
    p.add_argument("--method", default=PC.method, choices=list(METHODS),
                   help="how the point is converged after the transient")
    p.add_argument("--budget", type=_positive_int("--budget"), default=PC.budget,
                   help="iterations after the transient before 'not converged'")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=_threshold)
    p = sub.add_parser("table", help="Markdown table of delta_NN +- err from thresholds.nc files: "
                       "one column per d and the d -> inf limit",
                       description="Merge thresholds.nc files (tables at the same d are merged "
                       "cell by cell) and fit delta_NN(d) = a + b/sqrt(d) per cell "
                       "(docs/theory.md, section 7).")
    p.add_argument("files", nargs="+", metavar="THRESHOLDS_NC")
    p.add_argument("--out", metavar="NC", help="also write the merged table and the fits here")
    p.set_defaults(func=_table)
    p = sub.add_parser("gd-threshold", help="where GD's seed-mean final hard overlap crosses 1/2, "
                       "from a sweep.nc")
    p.add_argument("file", metavar="SWEEP_NC")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_gd_threshold)
    p = sub.add_parser("finite-size", help="GD's transition against d (and the escape "
                       "predictor's) from sweep.nc files of any d and schedule",
                       description="Per (schedule, m, d): delta_GD +- err, the predictor's "
                       "delta_pred, escape-step ratios, stuck runs' late rise; then the fit "
                       "delta_GD = alpha + beta ln d (deltann.finite_size).")
    p.add_argument("files", nargs="+", metavar="SWEEP_NC")
    p.add_argument("--plateaus", action="store_true",
                   help="also the grokking plateaus per (schedule, m, d, delta)")
    p.add_argument("--pred-level", type=_finite("--pred-level", 0.0, strict=True), default=0.5,
                   help="predicted hard overlap that counts as an escape (sensitivity; other "
                   "than 1/2 it is read off the recorded pred_overlap)")
    p.add_argument("--theory", nargs="+", default=[], metavar="THEORY_NC",
                   help="theory.nc files or deltann table files (e.g. results_study_limit.nc): "
                        "also print delta_NN(d) and its d -> inf limit per initialisation, and "
                        "with --plateaus the plateau fit against delta - delta_NN(d)")
    p.add_argument("--replay-stop", type=_finite("--replay-stop", 0.0, strict=True),
                   metavar="RTOL", help="instead: replay early stopping ('escaped', overlap >= "
                   "0.9) at this train.stop_rtol on the recorded runs and say what it changes")
    p.add_argument("--replay-stuck", type=_positive_int("--replay-stuck"), metavar="AFTER",
                   help="with --replay-stop: also replay the 'stuck' rule from this step on "
                   "(train.stuck_after)")
    p.add_argument("--stuck-qtol", type=_finite("--stuck-qtol", 0.0, strict=True),
                   default=STUCK_QTOL,
                   help="the 'stuck' rule's largest rise of the overlap over the last doubling "
                   f"(train.stuck_qtol; default {STUCK_QTOL:g})")
    p.add_argument("--compare", nargs="+", metavar="SWEEP_NC",
                   help="instead: compare each SWEEP_NC run by run with the positional file at "
                   "the same place (the same runs trained another way, e.g. train.dtype "
                   "float32, or with a longer budget): decisions, final overlaps, escape steps, "
                   "the runs below 1/2 in the first (flat by --stuck-qtol, or still moving) that "
                   "end above it in the second, delta_GD and the seed means per delta of each")
    p.add_argument("--at-step", type=_positive_int("--at-step"), metavar="T",
                   help="read the positional SWEEP_NC files at budget T, a record step of "
                   "theirs (their records up to T; finite_size.at_step): e.g. a run to 4 T with "
                   "train.record_at [T/2, T], with --compare against itself (the budget check)")
    p.add_argument("--out", metavar="NC", help="also write the table here (NetCDF)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_finite_size)
    p = sub.add_parser("provenance", help="print the provenance attributes of an output file",
                       description="Print where a deltann NetCDF came from: config (JSON), its "
                       "sha256, package version, git commit (+dirty), seed entropy, created.")
    p.add_argument("file", metavar="NC", help="a NetCDF written by the workflow")
    p.add_argument("--json", action="store_true", help="one JSON object, every attribute")
    p.set_defaults(func=_provenance)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `deltann table ... | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
