"""``benchmarks/active_learning.py``'s tabulation (no training): arms from raw rows, arms read back from a previous
tabulation's JSON (``--previous-json``, when the raw files are gone), the legacy markdown's per-vertical table, and
resuming."""
import argparse
import json
from pathlib import Path

import pytest

from ..helpers import load_benchmark

VERTICALS = ["Coffee", "Shoes"]


@pytest.fixture(scope="module")
def al():
    return load_benchmark("active_learning")


def rows_for(variant, offset=0.0):
    """Two verticals, seeds 0-1, start 20%, least-confidence and random at 30% and 40%, a 100% reference."""
    rows = []
    for seed in (0, 1):
        for k, vertical in enumerate(VERTICALS):
            base = 0.60 + 0.02 * k + 0.01 * seed + offset
            rows.append({"variant": variant, "vertical": vertical, "seed": seed, "strategy": "start", "share": 0.2, "macro_f1": base, "seconds": 1.0})
            for step, share in enumerate((0.3, 0.4), start=1):
                rows.append({"variant": variant, "vertical": vertical, "seed": seed, "strategy": "least-confidence", "share": share,
                             "macro_f1": base + 0.06 * step, "seconds": 1.0})
                rows.append({"variant": variant, "vertical": vertical, "seed": seed, "strategy": "random", "share": share,
                             "macro_f1": base + 0.03 * step, "seconds": 1.0})
            rows.append({"variant": variant, "vertical": vertical, "seed": seed, "strategy": "all", "share": 1.0, "macro_f1": base + 0.12, "seconds": 2.0})
    return rows


def write_raw(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")
    return path


def args(tmp_path, raw, output, previous_json=None, previous_variants=None):
    return argparse.Namespace(raw=raw, more_raw=[], previous_json=previous_json, previous_variants=previous_variants, single_reference=None,
                              coupled_reference=None, coupled_reference_seeds=None, strategies=["least-confidence", "entropy", "random"],
                              corpus=tmp_path / "corpus", output=output)


def section(md, heading):
    return md.split(f"## {heading}")[1].split("\n## ")[0]


def test_summary_from_rows(al):
    arm = al.arm_from_rows(rows_for("single"), "single", ["least-confidence", "entropy", "random"])
    assert arm["strategies"] == ["least-confidence", "random"]
    md, data = al.summary_tables(arm)
    # 100%: 73 (seed 0) and 74 (seed 1) -> 73.5 +- 0.5, bar 73.0; least-confidence at 40%: 73 and 74 -> reached at 40%
    assert data["reference"]["mean"] == pytest.approx(73.5)
    assert data["needed"] == {"least-confidence": 0.4, "random": None}
    assert "| least-confidence | 61.5 +- 0.5 | 67.5 +- 0.5 | 73.5 +- 0.5 | 40% |" in md
    assert "| random | 61.5 +- 0.5 | 64.5 +- 0.5 | 67.5 +- 0.5 | not reached by 40% |" in md
    assert "+6.0 (+12.0 sd)" in md  # least-confidence - random at 40%, sd 0.5


def test_previous_json_reproduces_the_tables_and_adds_the_new_arm(al, tmp_path):
    """A first tabulation of both arms; then the single-task raw rows are "lost": the single-task arm is read from
    the first tabulation's JSON, the coupled one from its raw rows, and every single-task table comes out the same."""
    first = tmp_path / "first" / "al"
    al.tabulate(args(tmp_path, write_raw(tmp_path / "both.jsonl", rows_for("single") + rows_for("coupled", 0.05)), first))
    second = tmp_path / "second" / "al"
    al.tabulate(args(tmp_path, write_raw(tmp_path / "coupled.jsonl", rows_for("coupled", 0.05)), second, Path(f"{first}.json"), ["single"]))
    md1, md2 = Path(f"{first}.md").read_text(), Path(f"{second}.md").read_text()
    s1, s2 = section(md1, "Single-task"), section(md2, "Single-task")
    tables = lambda text: [line for line in text.splitlines() if line.startswith("|")]  # noqa: E731
    assert tables(s2) == tables(s1)
    assert "measured by this script, raw rows in" in s2 and "both.jsonl" in s2 and f"read back from `{first}.json`" in s2
    assert section(md2, "Coupled with") == section(md1, "Coupled with").replace("both.jsonl", "coupled.jsonl")
    assert "## Coupled against single-task at equal label share" in md2
    # coupled - single = +5.0 at every share, sd 0.5
    assert "| least-confidence | +5.0 (+10.0 sd), ahead on 2/2 seeds | +5.0 (+10.0 sd), ahead on 2/2 seeds | +5.0 (+10.0 sd), ahead on 2/2 seeds |" in md2
    data = json.loads(Path(f"{second}.json").read_text())
    assert data["variants"]["single"]["curves"] == json.loads(Path(f"{first}.json").read_text())["variants"]["single"]["curves"]
    assert data["coupled_vs_single"]["difference"]["random"]["0.4"] == pytest.approx(5.0)
    assert Path(f"{second}.png").stat().st_size > 0
    # chained: the second tabulation's JSON reads back the same way (per-vertical table and provenance kept)
    third = tmp_path / "third" / "al"
    al.tabulate(args(tmp_path, tmp_path / "none.jsonl", third, Path(f"{second}.json"), ["single"]))
    s3 = section(Path(f"{third}.md").read_text(), "Single-task")
    assert s3 == s2.replace(f"{first}.json", f"{second}.json")


def test_legacy_markdown_per_vertical_table(al, tmp_path):
    """Tabulations before --previous-json kept the per-vertical table only in the markdown."""
    first = tmp_path / "first" / "al"
    al.tabulate(args(tmp_path, write_raw(tmp_path / "single.jsonl", rows_for("single")), first))
    data = json.loads(Path(f"{first}.json").read_text())
    for key in ("per_vertical", "per_vertical_reference", "provenance", "models", "minutes", "models_note", "selection"):
        del data["variants"]["single"][key]
    Path(f"{first}.json").write_text(json.dumps(data))
    parsed = al.parse_previous_markdown(Path(f"{first}.md"), "single")
    assert parsed["per_vertical"]["Shoes"]["random"][0.4] == [68.5, 0.5, None]
    assert parsed["per_vertical_reference"]["Coffee"] == [72.5, 0.5, None]
    assert parsed["models"] == 24  # 2 verticals x 2 seeds x (start, 2 strategies x 2 rounds, 100%)
    arm = al.arm_from_previous(Path(f"{first}.json"), "single", ["least-confidence", "entropy", "random"])
    assert "raw JSONL files were not kept" in arm["provenance"] and "the per-vertical table from" in arm["provenance"]
    assert al.vertical_table(arm) == al.vertical_table(al.arm_from_rows(rows_for("single"), "single", ["least-confidence", "entropy", "random"]))
    assert al._fmt([70.5, 0.0, 1]) == "70.5 (1 seed)" and al._parse_cell("70.5 (1 seed)") == [70.5, 0.0, 1]


def test_an_arm_from_one_place_only(al, tmp_path):
    first = tmp_path / "first" / "al"
    raw = write_raw(tmp_path / "single.jsonl", rows_for("single"))
    al.tabulate(args(tmp_path, raw, first))
    with pytest.raises(SystemExit, match="read each arm from one place"):
        al.tabulate(args(tmp_path, raw, tmp_path / "x" / "al", Path(f"{first}.json"), ["single"]))
    with pytest.raises(SystemExit, match="needs --previous-variants"):
        al.tabulate(args(tmp_path, raw, tmp_path / "x" / "al", Path(f"{first}.json"), []))


def test_comparison_needs_the_same_verticals(al):
    single = al.arm_from_rows(rows_for("single"), "single", ["least-confidence", "random"])
    coupled = al.arm_from_rows([r for r in rows_for("coupled") if r["vertical"] == "Coffee"], "coupled", ["least-confidence", "random"])
    md, data = al.comparison(single, coupled, ["least-confidence", "random"])
    assert md.startswith("Not comparable as means over verticals") and data == {}
    assert "| Coffee | least-confidence | +0.0 | +0.0 | +0.0 |" in md and "Shoes |" not in md
