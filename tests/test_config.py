"""Config validation: defaults filled from the schema, errors name the key and allowed values."""

from pathlib import Path

import pytest
import yaml

from deltann.activations import ACTIVATIONS
from deltann.config import ConfigError, load_config, load_schema, validate_config
from deltann.losses import LOSSES
from deltann.targets import TARGETS

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _minimal(**exp):
    return {"experiments": {"e": exp}}


def test_defaults_are_filled_in_nested_experiments():
    cfg = validate_config(_minimal(d=[10]), SCHEMA)
    e = cfg["experiments"]["e"]
    assert e["train"]["lr"] == 0.2 and e["hessian"]["block"] == "W" and e["seeds"] == 2
    assert cfg["base_seed"] == 20260 and cfg["results_dir"] == "results"


def test_every_schema_key_has_description_and_default():
    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            assert "description" in sub, f"{path}.{key} lacks a description"
            if key not in node.get("required", []):
                assert "default" in sub, f"{path}.{key} lacks a default"
            walk(sub, f"{path}.{key}")

    schema = load_schema(SCHEMA)
    walk(schema, "")
    for name, sub in schema["$defs"].items():
        walk(sub, name)


def test_schema_enums_match_registries():
    exp = load_schema(SCHEMA)["$defs"]["experiment"]["properties"]
    assert exp["target"]["items"]["enum"] == list(TARGETS)
    assert exp["activation"]["items"]["enum"] == list(ACTIVATIONS)
    assert exp["loss"]["items"]["enum"] == list(LOSSES)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (_minimal(delta=[0.0]), r"experiments\.e\.delta\.0: 0\.0 is less than or equal"),
        (_minimal(target=["z3"]), r"experiments\.e\.target\.0: 'z3' is not allowed; allowed "
                                  r"values: \['z2'"),
        (_minimal(trian={}), r"experiments\.e: .*'trian'.*allowed keys"),
        (_minimal(d=[]), r"experiments\.e\.d: \[\] should be non-empty"),
        (_minimal(width=[2, 2]), r"experiments\.e\.width: .*non-unique"),
        (_minimal(train={"lr": -1}), r"experiments\.e\.train\.lr"),
        (_minimal(train={"schedule": "adam"}), r"schedule: 'adam' is not allowed"),
        ({"experiments": {"e": {}}, "figures": {"f": {"kind": "spectrum", "experiment": "x"}}},
         r"figures\.f\.experiment: 'x' is not an experiment"),
    ],
)
def test_bad_config_names_the_key(cfg, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg, SCHEMA)


@pytest.mark.parametrize("name", ["config.yaml", "configs/ci.yaml"])
def test_shipped_configs_are_valid(name):
    load_config(ROOT / name, SCHEMA)


def test_load_config_reports_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiments": {"e": {"seeds": 0}}}))
    with pytest.raises(ConfigError, match=r"(?s)bad\.yaml: .*experiments\.e\.seeds"):
        load_config(bad, SCHEMA)
