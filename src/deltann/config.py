"""Workflow configuration: JSON-Schema validation with defaults, and clear errors naming the key."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import jsonschema
import yaml

__all__ = ["ConfigError", "load_schema", "validate_config", "load_config", "default_schema_path"]


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

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


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


def _message(err: jsonschema.ValidationError) -> str:
    """One line per violation: the dotted key, what is wrong, and what is allowed."""
    key = _where(err)
    if err.validator == "enum":
        return f"{key}: {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        hints = [f"{k!r} -> did you mean {m[0]!r}?" for k in extra
                 if (m := difflib.get_close_matches(str(k), allowed, n=1))]
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


def validate_config(config: dict, schema: dict | str | Path | None = None) -> dict:
    """Validate ``config`` and return a copy with every default filled in.

    Raises ConfigError listing each violation as ``key.path: message`` (allowed values for enums).
    """
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    cfg = copy.deepcopy(config) if config is not None else {}
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(cls(schema).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    messages = [_message(e) for e in errors] or list(_semantic_errors(cfg))
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(messages))
    return cfg


def _semantic_errors(cfg: dict):
    """Messages for what the schema cannot express: distinct run ids, figures that can be drawn."""

    exps = cfg.get("experiments", {})
    for name, exp in exps.items():
        tags: dict[str, float] = {}
        for v in exp["delta"]:
            tag = f"{float(v):g}"
            if tag in tags:
                yield (f"experiments.{name}.delta: {tags[tag]!r} and {v!r} give the same run id "
                       f"'delta{tag}'; allowed: values distinct in 6 significant digits")
            tags[tag] = v
        if exp["trajectory"]["enabled"]:
            from .theory.trajectory import check_steps

            why = check_steps(exp["trajectory"])
            if why:
                yield f"experiments.{name}.trajectory.dense: {why}"
        lo, hi = exp["theory"]["delta_range"]
        if not lo < hi:
            yield (f"experiments.{name}.theory.delta_range: {[lo, hi]} must be [lo, hi] with "
                   "lo < hi")
    thr = cfg.get("thresholds", {})
    if "delta_range" in thr and not thr["delta_range"][0] < thr["delta_range"][1]:
        yield (f"thresholds.delta_range: {thr['delta_range']} must be [lo, hi] with lo < hi")
    for name, fig in cfg.get("figures", {}).items():
        yield from _figure_errors(name, fig, cfg)


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


def load_config(path: str | Path, schema: str | Path | None = None) -> dict:
    """Read a YAML config file and validate it (defaults filled)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    try:
        return validate_config(data, schema)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
