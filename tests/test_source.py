"""Code changes rerun what they affect (deltann.source) and provenance records a dirty tree."""

import subprocess

from deltann.io import git_commit
from deltann.source import RULE_ENTRIES, imported_modules, rule_code, source_hash


def test_import_graph_of_rules():
    train = imported_modules("deltann.runner", "deltann.io", "deltann.pipeline")
    assert {"deltann.model", "deltann.losses", "deltann.train", "deltann.data"} <= set(train)
    assert "deltann.cli" not in train and not any(m.startswith("deltann.figures") for m in train)
    fig = imported_modules("deltann.figures.spectrum")
    assert "deltann.figures.style" in fig and "deltann.figures.bbp" not in fig
    th = imported_modules("deltann.theory.table")
    assert "deltann.theory.second_phase" in th and "deltann.theory.trajectory" not in th


def test_hash_is_stable_and_distinguishes_rules():
    assert source_hash("deltann.pipeline") == source_hash("deltann.pipeline")
    assert rule_code("figure", "spectrum") != rule_code("figure", "bbp")
    assert rule_code("train") == rule_code("hessian")  # same entry module
    # the hash follows the imported-module closure: equal closures, equal hashes, and a rule
    # that imports one more module (theory.trajectory) hashes differently
    closure = {r: set(imported_modules("deltann.runner", "deltann.io", *RULE_ENTRIES[r]))
               for r in RULE_ENTRIES}
    for r in RULE_ENTRIES:
        assert (rule_code(r) == rule_code("train")) == (closure[r] == closure["train"])
    assert closure["trajectory"] != closure["train"]


def test_dirty_tree_is_recorded(tmp_path):
    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("a\n")
    git("add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "c")
    clean = git_commit(tmp_path)
    assert len(clean) == 40
    (tmp_path / "README.md").write_text("b\n")  # not code: still clean
    assert git_commit(tmp_path) == clean
    (tmp_path / "src" / "m.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == clean + "+dirty"
