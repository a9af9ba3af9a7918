"""Config validation: defaults filled from the schema, errors name the key and allowed values."""

import re
import subprocess
import sys
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


_FIG = {"kind": "spectrum", "experiment": "e"}

# (bad config, regex its single message must match): the key, then what is allowed.
BAD_CONFIGS = [
    # out-of-range values
    (_minimal(delta=[0.0]), r"experiments\.e\.delta\.0: 0\.0 is less than or equal .*; "
                            r"allowed: a number > 0"),
    (_minimal(delta=[1.0, -2.0]), r"experiments\.e\.delta\.1: -2\.0 .*allowed: a number > 0"),
    (_minimal(d=[0]), r"experiments\.e\.d\.0: 0 is less than the minimum of 1; "
                      r"allowed: an integer >= 1"),
    (_minimal(width=[2, 0]), r"experiments\.e\.width\.1: 0 .*allowed: an integer >= 1"),
    (_minimal(train={"lr": -1}), r"experiments\.e\.train\.lr: -1 .*allowed: a number > 0"),
    (_minimal(train={"lr": 0}), r"experiments\.e\.train\.lr: 0 .*allowed: a number > 0"),
    (_minimal(seeds=0), r"experiments\.e\.seeds: 0 .*allowed: an integer >= 1"),
    ({"blas_threads": 0, "experiments": {"e": {}}}, r"blas_threads: 0 .*allowed: an integer >= 1"),
    (_minimal(hessian={"steps": [-5]}), r"experiments\.e\.hessian\.steps\.0: -5 .*"
                                        r"allowed: an integer >= 0"),
    # unknown names
    (_minimal(target=["z3"]), r"experiments\.e\.target\.0: 'z3' is not allowed; allowed "
                              r"values: \['z2'"),
    (_minimal(activation=["gelu"]), r"experiments\.e\.activation\.0: 'gelu' is not allowed; "
                                    r"allowed values: \['tanh', 'erf', 'relu', 'softplus'"),
    (_minimal(loss=["hinge"]), r"experiments\.e\.loss\.0: 'hinge' is not allowed; "
                               r"allowed values: \['square', 'correlation'\]"),
    (_minimal(train={"schedule": "adam"}), r"experiments\.e\.train\.schedule: 'adam' is not "
                                           r"allowed; allowed values: \['both', 'first_layer', "
                                           r"'two_timescale'\]"),
    (_minimal(hessian={"method": "power"}), r"experiments\.e\.hessian\.method: 'power' is "
                                            r"not allowed; allowed values: \['auto', 'dense'"),
    ({"experiments": {"e": {}}, "figures": {"f": {**_FIG, "kind": "heatmap"}}},
     r"figures\.f\.kind: 'heatmap' is not allowed; allowed values: \['phase_diagram', "
     r"'overlap_vs_delta'"),
    # unknown keys (with a spelling hint)
    (_minimal(trian={}), r"experiments\.e: unknown key\(s\) \['trian'\] \('trian' -> did "
                         r"you mean 'train'\?\); allowed keys: \['a_init', 'activation'"),
    # the initialisation moved from train to the experiment's sweep axes
    (_minimal(train={"init_scale": 0.5}), r"experiments\.e\.train: unknown key\(s\) "
                                          r"\['init_scale'\] \('init_scale' is now a sweep axis"),
    (_minimal(init_scale=[1, 1.0000001]), r"experiments\.e\.init_scale: 1 and 1\.0000001 give "
                                          r"the same run id 'i1'"),
    (_minimal(init_scale=[0.5, 1], trajectory={"enabled": True}),
     r"experiments\.e\.init_scale: \[0\.5, 1\] has several values, but trajectory\.enabled"),
    (_minimal(a_init=0.5), r"experiments\.e\.a_init: 0\.5 is not of type 'array'"),
    ({"base_sed": 1, "experiments": {"e": {}}}, r"<top level>: unknown key\(s\) \['base_sed'\]"
                                                r".*allowed keys: \['base_seed'"),
    (_minimal(train={"learning_rate": 0.1}), r"experiments\.e\.train: unknown key\(s\) "
                                             r"\['learning_rate'\].*allowed keys: .*'lr'"),
    ({"experiments": {"e": {}}, "figures": {"f": {**_FIG, "select": {"width": 2}}}},
     r"figures\.f\.select: 'width' is not allowed; allowed values: \['target', .*'m'"),
    # wrong types
    (_minimal(delta=2.0), r"experiments\.e\.delta: 2\.0 is not of type 'array'; allowed: a "
                          r"non-empty list of distinct values, each a number > 0"),
    (_minimal(seeds="three"), r"experiments\.e\.seeds: 'three' is not of type 'integer'; "
                              r"allowed: an integer >= 1"),
    (_minimal(train={"steps": 10.5}), r"experiments\.e\.train\.steps: 10\.5 is not of type "
                                      r"'integer'"),
    (_minimal(center_labels="yes"), r"experiments\.e\.center_labels: 'yes' .*allowed: true "
                                    r"or false"),
    # empty sweeps and duplicated sweep values
    (_minimal(d=[]), r"experiments\.e\.d: \[\] should be non-empty; allowed: a non-empty list"),
    ({"experiments": {}}, r"experiments: \{\} should be non-empty"),
    (_minimal(width=[2, 2]), r"experiments\.e\.width: duplicated values \[2\] in \[2, 2\]; "
                             r"sweep values must be distinct"),
    (_minimal(delta=[1, 2.0, 1.0]), r"experiments\.e\.delta: duplicated values \[1\.0\]"),
    (_minimal(delta=[1.0, 1.0000001]), r"experiments\.e\.delta: 1\.0 and 1\.0000001 give the "
                                       r"same run id 'delta1'"),
    # figures that cannot be drawn from their experiment
    ({"experiments": {"e": {}}, "figures": {"f": {"kind": "spectrum", "experiment": "x"}}},
     r"figures\.f\.experiment: 'x' is not an experiment; known experiments: \['e'\]"),
    ({"experiments": {"e": {}}, "figures": {"f": {"kind": "spectrum"}}},
     r"figures\.f\.experiment: required for kind 'spectrum'"),
    ({"experiments": {"e": {}}, "figures": {"f": {"kind": "phase_diagram", "experiment": "e"}}},
     r"figures\.f: a phase_diagram figure needs theory curves \(delta_NN\), but "
     r"experiments\.e\.theory\.enabled is false"),
    ({"experiments": {"e": {}}, "figures": {"f": {"kind": "architecture"}}},
     r"figures\.f: an architecture figure reads thresholds\.nc, but thresholds\.enabled is "
     r"false"),
    ({"experiments": {"e": {}}, "thresholds": {"enabled": True},
      "figures": {"f": {"kind": "architecture", "checks": ["e", "q"]}}},
     r"figures\.f\.checks: 'q' is not an experiment; known experiments: \['e'\]"),
    ({"experiments": {"e": {}}, "thresholds": {"schedule": "both"}},
     r"thresholds\.schedule: 'both' is not of type 'array'"),
    ({"experiments": {"e": {}}, "thresholds": {"design": "random"}},
     r"thresholds\.design: 'random' is not allowed; allowed values: \['factorial', "
     r"'one_at_a_time'\]"),
    ({"experiments": {"e": {}}, "figures": {"f": {**_FIG, "select": {"m": 3}}}},
     r"figures\.f\.select\.m: 3 is not a value of experiment 'e'; allowed values: \[2\]"),
    ({"experiments": {"e": {}}, "figures": {"f": {**_FIG, "step": 7}}},
     r"figures\.f\.step: 7 is not a Hessian step of experiment 'e'; allowed values: \[50\]"),
    ({"experiments": {"e": {"hessian": {"steps": []}}}, "figures": {"f": _FIG}},
     r"figures\.f: a spectrum figure needs Hessian steps"),
    ({"experiments": {"bad name": {}}}, r"experiments: name 'bad name' is not allowed"),
    ({"experiments": {"e": {"trajectory": {"enabled": True, "dense": [60]}}}},
     r"experiments\.e\.trajectory\.dense: dense steps \[60\] are not check steps t_first \* "
     r"2\^j <= t_max: \[50, 100, "),
    ({"experiments": {"e": {}}, "figures": {"f": {"kind": "trajectory_spectrum",
                                                  "experiment": "e"}}},
     r"figures\.f: a trajectory_spectrum figure reads trajectory\.nc, but "
     r"experiments\.e\.trajectory\.enabled is false"),
    ({"experiments": {"e": {"theory": {"delta_range": [4.0, 2.0]}}}},
     r"experiments\.e\.theory\.delta_range: \[4\.0, 2\.0\] must be \[lo, hi\] with lo < hi"),
    ({"experiments": {"e": {}}, "thresholds": {"delta_range": [1.0]}},
     r"thresholds\.delta_range: \[1\.0\] is too short"),
    ({"experiments": {"e": {}}, "thresholds": {"method": "newton"}},
     r"thresholds\.method: 'newton' is not allowed; allowed values: \['lbfgs', 'gd'\]"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD_CONFIGS)
def test_bad_config_names_the_key(cfg, message):
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, SCHEMA)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid config:"
    assert len(lines) == 2, f"expected one message, got {lines[1:]}"  # one message per mistake
    assert re.search(message, lines[1]), lines[1]


def test_every_mistake_is_reported_at_once():
    cfg = _minimal(d=[0], activation=["gelu"], train={"lr": -1})
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, SCHEMA)
    msg = str(info.value)
    for key in ("experiments.e.d.0", "experiments.e.activation.0", "experiments.e.train.lr"):
        assert key in msg


@pytest.mark.parametrize("name", ["config.yaml"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_are_valid(name):
    """config.yaml and every study config under configs/ (the README's commands run them)."""
    load_config(ROOT / name, SCHEMA)


def test_load_config_reports_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiments": {"e": {"seeds": 0}}}))
    with pytest.raises(ConfigError, match=r"(?s)bad\.yaml: .*experiments\.e\.seeds"):
        load_config(bad, SCHEMA)


@pytest.mark.slow
def test_snakemake_stops_on_bad_configfile_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("results_dir: out\nexperiments:\n  e:\n    delta: [0.0, 1.0]\n"
                   "    train: {schedule: adam}\n")
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                          "--configfile", str(bad), "-n"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "experiments.e.delta.0: 0.0 is less than or equal to the minimum of 0; " \
           "allowed: a number > 0" in text
    assert "experiments.e.train.schedule: 'adam' is not allowed; allowed values: " \
           "['both', 'first_layer', 'two_timescale']" in text
    assert "Job stats" not in text and "Building DAG" not in text  # stopped while parsing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # nothing written
