"""Workflow configuration: JSON-Schema validation with defaults, and clear errors naming the key."""

from __future__ import annotations

import copy
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


def _message(err: jsonschema.ValidationError) -> str:
    key = _where(err)
    if err.validator == "enum":
        return f"{key}: {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        return f"{key}: {err.message}; allowed keys: {allowed}"
    return f"{key}: {err.message}"


def validate_config(config: dict, schema: dict | str | Path | None = None) -> dict:
    """Validate ``config`` and return a copy with every default filled in.

    Raises ConfigError listing each violation as ``key.path: message`` (allowed values for enums).
    """
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    cfg = copy.deepcopy(config) if config is not None else {}
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(cls(schema).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(_message(e) for e in errors))
    _check_semantics(cfg)
    return cfg


def _check_semantics(cfg: dict) -> None:
    """Checks the schema cannot express: figures point at existing experiments."""
    exps = cfg.get("experiments", {})
    for name, fig in cfg.get("figures", {}).items():
        if fig["experiment"] not in exps:
            raise ConfigError(f"figures.{name}.experiment: {fig['experiment']!r} is not an "
                              f"experiment; known experiments: {sorted(exps)}")


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
