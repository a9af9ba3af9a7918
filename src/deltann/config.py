"""Workflow configuration: JSON-Schema validation with defaults, and clear errors naming the key."""

from __future__ import annotations

import copy
import difflib
import math
from pathlib import Path

import jsonschema
import yaml

__all__ = ["ConfigError", "load_schema", "validate_config", "load_config", "default_schema_path",
           "read_yaml", "workflow_config"]


class ConfigError(ValueError):
    """A configuration that does not satisfy the schema (message names the key)."""


def default_schema_path() -> Path:
    """workflow/schemas/config.schema.yaml of the source tree this package was installed from."""
    return Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path | None = None) -> dict:
    path = Path(path) if path else default_schema_path()
    if not path.exists():
        raise FileNotFoundError(f"config schema not found: {path}")
    return yaml.safe_load(path.read_text())


def _with_defaults(cls):
    """A validator class that fills ``default`` values of ``properties`` while validating."""
    validate_props = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    # "integer" means a YAML integer: 100.0 is a float (jsonschema would accept it)
    checker = cls.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    return jsonschema.validators.extend(cls, {"properties": set_defaults}, type_checker=checker)


def _where(err: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in err.absolute_path) or "<top level>"


_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping",
               "null": "null"}


def _allowed(schema: dict) -> str:
    """Plain-language description of the values ``schema`` accepts (for error messages)."""
    if "enum" in schema:
        return f"one of {schema['enum']}"
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    text = " or ".join(_TYPE_NAMES.get(t, t) for t in types) or "a value"
    bounds = [f"{op} {schema[k]}" for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                ("maximum", "<="), ("exclusiveMaximum", "<"))
              if k in schema]
    if bounds:
        text += " " + " and ".join(bounds)
    if "pattern" in schema:
        text += f" matching {schema['pattern']}"
    if "array" in types:
        text = "a " + ("non-empty " if schema.get("minItems") else "") + "list"
        if schema.get("uniqueItems"):
            text += " of distinct values"
        if isinstance(schema.get("items"), dict):
            text += f", each {_allowed(schema['items'])}"
    if "object" in types and schema.get("minProperties"):
        text += f" with at least {schema['minProperties']} entry"
    return text


# keys that moved out of experiments.<name>.train
_MOVED = ("init_scale", "a_init")


def _message(err: jsonschema.ValidationError) -> str:
    """One line per violation: the dotted key, what is wrong, and what is allowed."""
    key = _where(err)
    if "propertyNames" in err.schema_path and err.validator in ("pattern", "maxLength", "not"):
        sub = err.schema  # the propertyNames schema holding the failed keyword
        reserved = sub.get("not", {}).get("enum")
        return (f"{key}: name {err.instance!r} is not allowed; allowed: names matching "
                f"{sub.get('pattern')}, at most {sub.get('maxLength')} characters"
                + (f", other than {reserved} (reserved for top-level outputs)" if reserved
                   else ""))
    if err.validator == "enum":
        return f"{key}: {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        moved = [k for k in extra if k in _MOVED and key.endswith(".train")]
        hints = [f"{k!r} -> did you mean {m[0]!r}?" for k in extra
                 if k not in moved and (m := difflib.get_close_matches(str(k), allowed, n=1))]
        hints += [f"{k!r} is now a sweep axis of the experiment ({k}: [values] next to width)"
                  for k in moved]
        hint = f" ({'; '.join(hints)})" if hints else ""
        return f"{key}: unknown key(s) {extra}{hint}; allowed keys: {allowed}"
    if err.validator == "uniqueItems":
        seen, dups = [], []
        for v in err.instance:
            (dups if v in seen and v not in dups else seen).append(v)
        return (f"{key}: duplicated values {dups} in {err.instance}; sweep values must be "
                f"distinct (allowed: {_allowed(err.schema)})")
    if err.validator == "required":
        return f"{key}: {err.message}; required keys: {err.validator_value}"
    return f"{key}: {err.message}; allowed: {_allowed(err.schema)}"


def _nonfinite(obj, path=()):
    """Messages for NaN / inf anywhere in the config (YAML .nan, .inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        yield (f"{'.'.join(map(str, path)) or '<top level>'}: {obj!r} is not allowed; allowed: "
               "a finite number")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _nonfinite(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nonfinite(v, (*path, i))


def _first_per_key(messages: list[str]) -> list[str]:
    """One message per key (a value can break several keywords of one schema)."""
    seen, out = set(), []
    for m in messages:
        key = m.split(":", 1)[0]
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def validate_config(config: dict, schema: dict | str | Path | None = None) -> dict:
    """Validate ``config`` and return a copy with every default filled in.

    Raises ConfigError listing each violation as ``key.path: message`` (allowed values for enums).
    """
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    cfg = copy.deepcopy(config) if config is not None else {}
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(cls(schema).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    messages = (list(_nonfinite(cfg)) or _first_per_key([_message(e) for e in errors])
                or list(_semantic_errors(cfg)))
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(messages))
    return cfg


def _semantic_errors(cfg: dict):
    """Messages for what the schema cannot express: distinct run ids, figures that can be drawn."""

    exps = cfg.get("experiments", {})
    for name, exp in exps.items():
        for where, grid in _grids(name, exp):
            if any(b <= a for a, b in zip(grid, grid[1:], strict=False)):
                yield (f"{where}: {grid} is not strictly increasing; allowed: an increasing "
                       f"list, e.g. {sorted(set(grid))}")
        yield from _same_n(name, exp)
        for key, prefix in (("delta", "delta"), ("init_scale", "i"), ("a_init", "a")):
            tags: dict[str, float] = {}
            for v in exp[key]:
                tag = f"{prefix}{float(v):g}"
                if tag in tags:
                    yield (f"experiments.{name}.{key}: {tags[tag]!r} and {v!r} give the same run "
                           f"id {tag!r}; allowed: values distinct in 6 significant digits")
                tags[tag] = v
        many = [k for k in ("init_scale", "a_init") if len(exp[k]) > 1]
        if exp["trajectory"]["enabled"] and many:
            yield (f"experiments.{name}.{many[0]}: {exp[many[0]]} has several values, but "
                   "trajectory.enabled is true and the trajectory is computed at one "
                   "initialisation; allowed: one value here (one experiment per "
                   "initialisation), or trajectory.enabled: false")
        if exp["trajectory"]["enabled"]:
            from .theory.trajectory import check_steps

            why = check_steps(exp["trajectory"])
            if why:
                yield f"experiments.{name}.trajectory.dense: {why}"
        for key in ("train", "predictor"):
            if exp[key]["backend"] == "jax":
                from .jax_backend import available

                why = available()
                if why:
                    yield f"experiments.{name}.{key}.backend: jax: {why}"
        lo, hi = exp["theory"]["delta_range"]
        if not lo < hi:
            yield (f"experiments.{name}.theory.delta_range: {[lo, hi]} must be [lo, hi] with "
                   "lo < hi")
    thr = cfg.get("thresholds", {})
    if "delta_range" in thr and not thr["delta_range"][0] < thr["delta_range"][1]:
        yield (f"thresholds.delta_range: {thr['delta_range']} must be [lo, hi] with lo < hi")
    for name, fig in cfg.get("figures", {}).items():
        yield from _figure_errors(name, fig, cfg)
    yield from _memory_errors(cfg)
    yield from _job_time_errors(cfg)


def _job_time_errors(cfg: dict):
    """Theory and thresholds jobs whose worst-case estimate exceeds ``max_job_hours`` even after
    the split (deltann.workflow.Layout.theory_parts / cell_parts), the worst one per key."""
    from .workflow import Layout

    try:
        layout = Layout(cfg)
        cap = layout.max_job_minutes
        for name, exp in cfg.get("experiments", {}).items():
            if exp["theory"]["enabled"]:
                worst = max((layout.theory_runtime(name, p), p)
                            for p in layout.theory_parts(name))
                if worst[0] > cap:
                    yield (f"experiments.{name}.theory: job {worst[1]!r} needs ~"
                           f"{worst[0] / 60:.1f} h (worst case), above max_job_hours = "
                           f"{cap / 60:g} even split per (d, seed) and delta; allowed: a larger "
                           "max_job_hours, or smaller theory.d, delta_range, n_grid, refine or "
                           "budget")
        thr = cfg.get("thresholds", {})
        if thr.get("enabled"):
            from .theory.table import table_cells

            worst = max((layout.threshold_cell_runtime(t, p), f"{t}/{p}") for t in thr["target"]
                        for c in table_cells(thr, t) for p in layout.cell_parts(t, c))
            if worst[0] > cap:
                yield (f"thresholds: job {worst[1]!r} needs ~{worst[0] / 60:.1f} h (worst case, "
                       f"one seed), above max_job_hours = {cap / 60:g}; allowed: a larger "
                       "max_job_hours, or smaller d, delta_range, n_grid, refine or budget")
    except (KeyError, ValueError, TypeError):  # reported by the other checks
        return


def _grids(name: str, exp: dict):
    """(key, list) of every grid of an experiment that must be strictly increasing."""
    yield f"experiments.{name}.d", exp["d"]
    yield f"experiments.{name}.delta", exp["delta"]
    yield f"experiments.{name}.theory.d", exp["theory"]["d"]
    yield f"experiments.{name}.theory.deltas", exp["theory"]["deltas"]
    yield f"experiments.{name}.trajectory.deltas", exp["trajectory"]["deltas"]
    yield f"experiments.{name}.hessian.steps", exp["hessian"]["steps"]


def _same_n(name: str, exp: dict):
    """Two delta values with the same n = round(delta d) at some d: the same data twice (GD
    runs, theory points and trajectories each draw their n rows by n = round(delta d))."""
    from .sweep import n_samples

    grids = [("delta", exp["delta"], exp["d"]),
             ("theory.deltas", exp["theory"]["deltas"], exp["theory"]["d"]),
             ("trajectory.deltas", exp["trajectory"]["deltas"], [exp["trajectory"]["d"]])]
    for key, deltas, ds in grids:
        for d in ds:
            by_n: dict[int, float] = {}
            for v in deltas:
                n = n_samples(int(d), float(v))
                if n in by_n and f"{float(by_n[n]):g}" != f"{float(v):g}":  # else: same run id
                    yield (f"experiments.{name}.{key}: {by_n[n]!r} and {v!r} give the same n = "
                           f"{n} samples at d = {d} (n = round(delta d)); allowed: deltas whose n "
                           "differ at every d")
                by_n[n] = v


def _memory_errors(cfg: dict):
    """Jobs whose estimated memory (deltann.resources) exceeds max_memory_gb, by key."""
    from .resources import hessian_mem_mb, train_mem_mb
    from .sweep import Point

    cap = float(cfg.get("max_memory_gb", 16))
    need = []  # (key, GiB, what)
    for name, exp in cfg.get("experiments", {}).items():
        p = Point("", "", "", max(exp["width"]), max(exp["d"]), max(exp["delta"]), 0)
        need.append((f"experiments.{name}.d/delta/width/n_test",
                     train_mem_mb(p, exp["n_test"]) / 1024,
                     f"a GD run at d={p.d}, delta={p.delta:g}, m={p.m}, n_test={exp['n_test']}"))
        h = exp["hessian"]
        if h["steps"]:
            dense = h["method"] == "dense" or (h["method"] == "auto"
                                                and p.m * p.d <= h["dense_max"])
            gib = hessian_mem_mb(p, exp["n_test"], dense) / 1024
            need.append((f"experiments.{name}.hessian.method/dense_max", gib,
                         f"a {'dense' if dense else 'Lanczos'} Hessian of m d = {p.m * p.d} at "
                         f"n = {p.n}"))
        th = exp["theory"]
        if th["enabled"]:
            q = Point("", "", "", max(exp["width"]), max(th["d"]),
                      max(max(th["deltas"]), th["delta_range"][1]), 0)
            need.append((f"experiments.{name}.theory.d/deltas/delta_range",
                         train_mem_mb(q, 0) / 1024,
                         f"second-phase points at d={q.d}, delta up to {q.delta:g}"))
    thr = cfg.get("thresholds", {})
    if thr.get("enabled"):
        q = Point("", "", "", max(thr["width"]), int(thr["d"]), float(thr["delta_range"][1]), 0)
        need.append(("thresholds.d/delta_range/width", train_mem_mb(q, 0) / 1024,
                     f"second-phase points at d={q.d}, delta up to {q.delta:g}"))
    for key, gib, what in need:
        if gib > cap:
            yield (f"{key}: {what} needs ~{gib:.3g} GiB, above max_memory_gb = {cap:g}; allowed: "
                   "smaller d, delta, m or n_test, or a larger max_memory_gb")


def _figure_errors(name: str, fig: dict, cfg: dict):
    """Messages for one figure: its experiment, the inputs its kind needs, select and step."""
    from .sweep import axis_values

    exps = cfg.get("experiments", {})
    kind = fig["kind"]
    for chk in fig.get("checks", []):
        if chk not in exps:
            yield (f"figures.{name}.checks: {chk!r} is not an experiment; "
                   f"known experiments: {sorted(exps)}")
    if kind == "architecture":
        if not cfg.get("thresholds", {}).get("enabled"):
            yield (f"figures.{name}: an architecture figure reads thresholds.nc, but "
                   "thresholds.enabled is false")
        return
    if kind in ("finite_size", "grokking", "initialisation"):
        yield from _sweep_set_errors(name, fig, exps)
        return
    src = fig.get("experiment")
    if src is None:
        yield f"figures.{name}.experiment: required for kind {kind!r}"
        return
    if src not in exps:
        yield (f"figures.{name}.experiment: {src!r} is not an experiment; "
               f"known experiments: {sorted(exps)}")
        return
    exp = exps[src]
    axes = axis_values(exp)
    if kind in ("bbp", "phase_diagram", "escape_time") and not exp["theory"]["enabled"]:
        yield (f"figures.{name}: a {kind} figure needs theory curves (delta_NN), but "
               f"experiments.{src}.theory.enabled is false")
    if kind == "trajectory_spectrum":
        if not exp["trajectory"]["enabled"]:
            yield (f"figures.{name}: a trajectory_spectrum figure reads trajectory.nc, but "
                   f"experiments.{src}.trajectory.enabled is false")
        axes["delta"] = list(exp["trajectory"]["deltas"])
    if kind == "bbp":
        axes["d"], axes["delta"] = list(exp["theory"]["d"]), list(exp["theory"]["deltas"])
    for val in fig.get("deltas", []):
        if not any(math.isclose(float(val), float(a), rel_tol=1e-9) for a in axes["delta"]):
            yield (f"figures.{name}.deltas: {val!r} is not a delta of experiment {src!r}"
                   f"{' (trajectory.deltas)' if kind == 'trajectory_spectrum' else ''}; "
                   f"allowed values: {axes['delta']}")
    for ax, val in fig.get("select", {}).items():
        if val not in axes[ax]:
            yield (f"figures.{name}.select.{ax}: {val!r} is not a value of experiment "
                   f"{src!r}; allowed values: {axes[ax]}")
    hsteps = sorted({min(int(s), int(exp["train"]["steps"])) for s in exp["hessian"]["steps"]})
    if kind == "spectrum" and not hsteps:
        yield (f"figures.{name}: a spectrum figure needs Hessian steps, but "
               f"experiments.{src}.hessian.steps is empty")
    elif kind == "spectrum" and fig.get("step") not in (None, *hsteps):
        yield (f"figures.{name}.step: {fig['step']!r} is not a Hessian step of experiment "
               f"{src!r}; allowed values: {hsteps}")


def _sweep_set_errors(name: str, fig: dict, exps: dict):
    """finite_size / grokking / initialisation: sweeps in ``checks``; an optional theory
    ``experiment`` (initialisation: ``theories``);
    grokking's ``deltas`` one per drawn d; ``select`` values present in every sweep."""
    from .sweep import axis_values

    kind = fig["kind"]
    if not fig.get("checks"):
        yield (f"figures.{name}.checks: a {kind} figure draws the sweeps listed here; allowed: "
               f"a list of experiments, e.g. one per d; known experiments: {sorted(exps)}")
        return
    src = fig.get("experiment")
    if src is not None and kind == "finite_size":
        if src not in exps:
            yield (f"figures.{name}.experiment: {src!r} is not an experiment; "
                   f"known experiments: {sorted(exps)}")
        elif not exps[src]["theory"]["enabled"]:
            yield (f"figures.{name}.experiment: a finite_size figure reads its theory.nc "
                   f"(delta_NN(d)), but experiments.{src}.theory.enabled is false")
    if fig.get("limit") and kind == "finite_size" and not Path(fig["limit"]).is_file():
        yield (f"figures.{name}.limit: no such file {fig['limit']!r} (from {Path.cwd()}); "
               "allowed: the path of a `deltann table` output, e.g. results_study_limit.nc")
    elif fig.get("limit") and kind != "finite_size":
        yield f"figures.{name}.limit: only a finite_size figure reads a limit table"
    for src in fig.get("theories", []):
        if src not in exps:
            yield (f"figures.{name}.theories: {src!r} is not an experiment; "
                   f"known experiments: {sorted(exps)}")
        elif not exps[src]["theory"]["enabled"]:
            yield (f"figures.{name}.theories: {src!r} has theory.enabled false; allowed: "
                   "experiments that compute theory.nc")
    known = [c for c in fig["checks"] if c in exps]
    n_d = len({d for c in known for d in exps[c]["d"]})  # sweeps at one d are merged
    if kind == "grokking" and fig.get("deltas") and len(fig["deltas"]) != n_d:
        yield (f"figures.{name}.deltas: one delta per drawn d ({n_d} over checks {known}), "
               f"got {len(fig['deltas'])}; allowed: omit it (smallest delta where half the "
               "seeds escape)")
    for ax, val in fig.get("select", {}).items():
        for c in known:
            allowed = axis_values(exps[c])[ax]
            if ax != "d" and val not in allowed:
                yield (f"figures.{name}.select.{ax}: {val!r} is not a value of experiment "
                       f"{c!r}; allowed values: {allowed}")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (YAML keeps the last)."""


def _strict_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is written twice in one mapping (first at line "
                f"{seen[key] + 1}); allowed: each key once", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as a mapping; ConfigError naming the file on a duplicate key, bad YAML
    or a document that is not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open() as fh:
            data = yaml.load(fh, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got "
                          f"{type(data).__name__}")
    return data


def load_config(path: str | Path, schema: str | Path | None = None) -> dict:
    """Read a YAML config file and validate it (defaults filled)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file not found: {path}")
    data = read_yaml(path)
    try:
        return validate_config(data, schema)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


_TYPES = {"integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "boolean": lambda v: isinstance(v, bool)}


def _coerce_strings(value, schema: dict, root: dict | None = None):
    """Snakemake's ``--config key={a: 1}`` passes nested values as strings ('1'): read a string
    as YAML where the schema wants an integer, number or boolean there (and it is one)."""
    root = schema if root is None else root
    while isinstance(schema, dict) and "$ref" in schema:  # "#/$defs/<name>"
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node.get(part, {})
        schema = node
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {k: _coerce_strings(v, props.get(k, extra if isinstance(extra, dict) else {}),
                                   root) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce_strings(v, schema.get("items", {}), root) for v in value]
    want = schema.get("type")
    if isinstance(value, str) and isinstance(want, str) and want in _TYPES:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if _TYPES[want](parsed) else value
    return value


def workflow_config(config: dict, schema: str | Path, configfiles=()) -> dict:
    """The Snakefile's entry: re-read ``configfiles`` strictly (duplicate keys), validate
    ``config`` (defaults filled) and return it; on a user error print the message and exit 2
    (no traceback) before any job runs."""
    import sys

    try:
        for f in configfiles:
            read_yaml(f)
        schema = load_schema(schema)
        return validate_config(_coerce_strings(config, schema), schema)
    except ConfigError as err:
        where = f" ({', '.join(map(str, configfiles))})" if configfiles else ""
        text = str(err).replace("invalid config:", f"invalid config{where}:", 1)
        print(f"deltann: {text}", file=sys.stderr)
        raise SystemExit(2) from None
