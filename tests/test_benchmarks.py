"""The benchmark suite runs (tiny sizes) and writes its table and JSON; no timing is asserted."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as bench  # noqa: E402
from benchmarks import jax_cmp, pipeline, torch_cmp  # noqa: E402

ROW_KEYS = {"section", "case", "ours", "ref_name", "ref", "ratio", "ratio_def", "target", "met",
            "note", "unit", "extra"}


def test_quick_run_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench.main(["--quick", "--only", "gd,batched,spectrum,memory,torch,jax", "--out",
                       str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| " + " | ".join(bench.HEAD) + " |")
    res = json.loads(out.read_text())
    assert set(res) == {"meta", "skipped", "rows", "table"}
    assert {"date", "loadavg_start", "loadavg_end", "blas", "commit"} <= set(res["meta"])
    rows = res["rows"]
    assert {r["section"] for r in rows} >= {"gd", "batched", "spectrum", "memory"}
    assert sum(r["section"] == "batched" for r in rows) == 2 * 3  # 2 cases x 3 rows
    for r in rows:
        assert set(r) == ROW_KEYS
        assert set(r["ours"]) == {"median", "iqr", "repeats"} and r["ours"]["median"] > 0
        assert r["ratio"] > 0
    # 2 sizes x 2 widths x 2 dtypes in the gd section, plus the Gram path
    assert sum(r["section"] == "gd" for r in rows) == 8 + 1  # + one Gram-path row
    if torch_cmp.available() is None:
        assert sum(r["section"] == "torch" for r in rows) == 4
        assert all(r["extra"]["rel_diff"] < 1e-10 for r in rows if r["section"] == "torch")
    else:
        assert "torch" in res["skipped"]
    if jax_cmp.available() is None:  # 2 cases x (step, HVP and run on the numpy and the jax
        jx = [r for r in rows if r["section"] == "jax"]  # backend), checked equal before timing
        assert len(jx) == 10 and all(r["extra"]["rel_diff"] < 1e-3 for r in jx)
        assert all(r["extra"]["rel_diff"] < 1e-8 for r in jx if r["extra"]["dtype"] == "float64")
    else:
        assert "jax" in res["skipped"]


def test_missing_torch_is_skipped_with_a_message(monkeypatch, capsys):
    monkeypatch.setattr(torch_cmp, "available", lambda: "torch not installed (test)")
    assert bench.main(["--quick", "--only", "torch"]) == 0
    assert "section torch skipped: torch not installed (test)" in capsys.readouterr().out


def test_unknown_section_is_an_error():
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--only", "gpu"])


def test_pipeline_rows_from_snakemake_benchmark_files(tmp_path):
    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {
        "e/train/z2__softplus__square__m2__d100__delta2__s0.tsv": (3.0, 120.0, 2.9),
        "e/train/z2__softplus__square__m2__d100__delta8__s0.tsv": (5.0, 130.0, 4.8),
        "e/hessian/z2__softplus__square__m2__d100__delta2__s0.tsv": (1.0, 140.0, 0.9),
        "e/escape/z2__softplus__square__m2__d100__delta2__s0__a2.tsv": (2.5, 125.0, 2.4),
        "e/theory_parts/all.tsv": (6.0, 145.0, 5.9),
        "e/aggregate.tsv": (2.0, 150.0, 1.5),
        "figures/bbp.tsv": (1.5, 160.0, 1.2),
        "thresholds/z2sat/softplus__square__m2__first_layer.tsv": (4.0, 135.0, 3.9),
    }
    for rel, (s, rss, cpu) in files.items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(head + f"{s}\t0:00:0{int(s)}\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    recs = pipeline.read_benchmarks(tmp_path)
    assert sorted(r["rule"] for r in recs) == ["aggregate", "escape", "figure", "hessian",
                                               "theory_part", "threshold_cell", "train", "train"]
    rows = pipeline.rows_from(10.0, recs)
    assert rows[0].ratio == pytest.approx(25.0 / 10.0)
    train = next(r for r in rows if r.case.startswith("rule train"))
    assert train.ratio == pytest.approx(0.8) and train.extra["max_rss_mb"] == 130.0
    loop = pipeline.rows_from(10.0, recs, gd_loop_s=2.0)
    share = next(r for r in loop if "GD loop" in r.case)
    assert share.ratio == pytest.approx(2.0 / 8.0) and share.extra["startup_share"] == 0.75
    rss = rows[-1]
    assert rss.unit == "MB" and rss.extra["x_mb"] == pytest.approx(8 * 800 * 100 / 1e6)
    assert rss.ratio == pytest.approx(130.0 / (8 * 800 * 100 / 1e6))
    assert bench.table(rows).count("\n") == len(rows) + 1
