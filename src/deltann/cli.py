"""The ``deltann`` command line: ``deltann targets``, ``deltann provenance FILE``."""

from __future__ import annotations

import argparse
import json
import sys

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
    from .io import REQUIRED_GLOBAL_ATTRS, read_netcdf

    ds = read_netcdf(args.file)
    missing = [k for k in REQUIRED_GLOBAL_ATTRS if k not in ds.attrs]
    out = {k: ds.attrs[k] for k in ds.attrs if k != "config"}
    out["config"] = json.loads(ds.attrs["config"]) if "config" in ds.attrs else None
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        for k, v in out.items():
            print(f"{k}: {json.dumps(v) if k == 'config' else v}")
    if missing:
        print(f"{args.file}: missing provenance attributes {missing}", file=sys.stderr)
        return 1
    return 0


def _threshold(args) -> int:
    import logging

    from .theory.threshold import delta_nn
    from .train import TrainConfig

    if not args.json:
        logging.basicConfig(level=logging.INFO, format="  %(message)s", stream=sys.stderr)
    cfg = TrainConfig(steps=args.steps, lr=args.lr, schedule=args.schedule)
    res = delta_nn(args.target, args.activation, args.loss, args.width, d=args.d, cfg=cfg,
                   seeds=args.seeds, noise=args.noise)
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        fmt = lambda v: "not defined" if v is None else f"{v:.4g}"  # noqa: E731
        print(f"delta_alg = {fmt(res.delta_alg)}")
        print(f"delta_NN  = {fmt(res.delta_nn)}   ({res.reason})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deltann", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("targets", help="list registered targets (easy/hard latent directions)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_targets)
    p = sub.add_parser("threshold", help="delta_alg and delta_NN of one architecture (theory)")
    p.add_argument("--target", required=True, choices=list(TARGETS))
    p.add_argument("--activation", default="softplus")
    p.add_argument("--loss", default="square")
    p.add_argument("--width", type=int, default=2, help="hidden units m")
    p.add_argument("--noise", type=float, default=0.0, help="label noise sd")
    p.add_argument("--d", type=int, default=400, help="dimension of the second-phase point")
    p.add_argument("--steps", type=int, default=200, help="projected-GD steps (first phase)")
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--schedule", default="both", choices=["both", "first_layer", "two_timescale"])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=_threshold)
    p = sub.add_parser("provenance", help="print the provenance attributes of an output file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_provenance)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
