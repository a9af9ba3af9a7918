"""Which package source a workflow rule runs: the deltann modules its entry modules import
(transitively, read from the source with ``ast``), and one hash of their text.

A rule passes ``code=source_hash(*entries)`` as a param, so Snakemake's params trigger reruns
exactly the jobs whose code changed: editing ``model.py`` reruns training and what reads it,
editing a figure module redraws the figures of that kind, editing ``cli.py`` reruns nothing.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

__all__ = ["RULE_ENTRIES", "module_file", "imported_modules", "source_hash", "rule_code"]

_PKG_DIR = Path(__file__).resolve().parent

#: rule -> entry modules (besides deltann.runner and deltann.io, which every script imports)
RULE_ENTRIES = {
    "train": ("deltann.pipeline",),
    "hessian": ("deltann.pipeline",),
    "escape": ("deltann.escape",),
    "aggregate": ("deltann.pipeline",),
    "theory_part": ("deltann.theory.curves",),
    "theory": ("deltann.theory.curves",),
    "trajectory": ("deltann.theory.trajectory",),
    "threshold_cell": ("deltann.theory.table",),
    "thresholds": ("deltann.theory.table",),
}


def module_file(name: str) -> Path | None:
    """The source file of deltann module ``name`` (a package's __init__.py); None if absent."""
    parts = name.split(".")
    if parts[0] != "deltann":
        return None
    base = _PKG_DIR.joinpath(*parts[1:])
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _imports(name: str) -> set[str]:
    """deltann modules imported anywhere in module ``name`` (also inside functions)."""
    f = module_file(name)
    if f is None:
        return set()
    pkg = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(f.read_text(), str(f))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "deltann"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "deltann":
                continue
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names if module_file(f"{mod}.{a.name}")}
    # a submodule import also runs its parent packages' __init__
    for m in list(out):
        parts = m.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return {m for m in out if module_file(m)}


@cache
def imported_modules(*entries: str) -> tuple[str, ...]:
    """``entries`` and every deltann module they import, transitively, sorted."""
    seen: set[str] = set()
    todo = [e for e in entries if module_file(e)]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(_imports(m) - seen)
    return tuple(sorted(seen))


def source_hash(*entries: str) -> str:
    """sha256 (first 16 hex digits) of the text of ``imported_modules(*entries)``."""
    h = hashlib.sha256()
    for m in imported_modules(*entries):
        h.update(m.encode() + b"\0" + module_file(m).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def rule_code(rule: str, figure_kind: str | None = None) -> str:
    """The ``code`` param of a workflow rule (``figure`` needs its kind)."""
    entries = (f"deltann.figures.{figure_kind}",) if rule == "figure" else RULE_ENTRIES[rule]
    return source_hash("deltann.runner", "deltann.io", *entries)
