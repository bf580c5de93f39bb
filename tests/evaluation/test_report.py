"""The `report` command: Table 3 aggregation over seeds, Table 4 per-tag improvement, Figure 4 attention."""
import json
import os

import numpy
import pytest
import srsly
from matplotlib.image import imread
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.evaluation.attention import (
    alignment_score,
    average_attention,
    plot_attention,
    top_pairs,
)
from spacy_mtlave.evaluation.evaluate import evaluate_pipeline
from spacy_mtlave.evaluation.tables import (
    mean_sd,
    summarise,
    table3_markdown,
    tag_improvements,
)
from spacy_mtlave.training.run_info import system_name

TAGS = ["O", "B-Brand", "I-Brand", "B-Flavor", "I-Flavor", "B-Size", "I-Size"]
KEYS = ("macro_p", "macro_r", "accuracy", "macro_f1", "ents_p", "ents_r", "ents_f")


def record(system, vertical, seed, value):
    metrics = {key: value for key in KEYS}
    metrics["rare_tag_f1"] = None
    return {"system": system, "vertical": vertical, "seed": seed, "metrics": metrics}


def test_mean_sd_is_sample_sd_and_skips_none():
    stat = mean_sd([0.5, None, 0.7, 0.9])
    assert stat["n"] == 3 and stat["mean"] == pytest.approx(0.7) and stat["sd"] == pytest.approx(0.2)
    assert mean_sd([0.4]) == {"mean": 0.4, "sd": None, "n": 1}
    assert mean_sd([None]) == {"mean": None, "sd": None, "n": 0}


def test_summarise_means_sds_and_deltas():
    records = [record("single", v, s, x) for v in ("Coffee", "Tea") for s, x in enumerate((0.5, 0.6, 0.7))]
    records += [record("full coupling", "Coffee", s, x) for s, x in enumerate((0.8, 0.9, 1.0))]
    records += [record("full coupling", "Tea", s, x) for s, x in enumerate((0.55, 0.65, 0.75))]
    records += [record("spaCy ner", "Coffee", 0, 0.65)]
    summary = summarise(records)
    assert summary["systems"] == ["single", "spaCy ner", "full coupling"]
    coffee, tea = summary["verticals"]["Coffee"], summary["verticals"]["Tea"]
    assert coffee["full coupling"]["macro_f1"]["mean"] == pytest.approx(0.9)
    assert coffee["full coupling"]["macro_f1"]["sd"] == pytest.approx(0.1)
    assert coffee["full coupling"]["delta"]["macro_f1"]["diff"] == pytest.approx(0.3)
    assert coffee["full coupling"]["delta"]["macro_f1"]["exceeds_sd"] is True
    assert tea["full coupling"]["delta"]["macro_f1"]["exceeds_sd"] is False
    assert "delta" not in coffee["single"] and "Tea" not in {v for v, rows in summary["verticals"].items() if "spaCy ner" in rows}
    # per seed the mean over verticals (0.675, 0.775, 0.875), then over seeds
    full = summary["mean"]["full coupling"]
    assert full["verticals"] == ["Coffee", "Tea"]
    assert full["macro_f1"]["mean"] == pytest.approx(0.775) and full["macro_f1"]["sd"] == pytest.approx(0.1)
    assert full["delta"]["macro_f1"]["diff"] == pytest.approx(0.175)
    # spaCy ner covers only Coffee: compared with single on Coffee
    assert summary["mean"]["spaCy ner"]["delta"]["macro_f1"]["diff"] == pytest.approx(0.05)
    assert summary["mean"]["spaCy ner"]["delta"]["macro_f1"]["exceeds_sd"] is False
    lines = table3_markdown(summary).splitlines()
    row = next(line for line in lines if line.startswith("| Coffee | full coupling | 3 |"))
    assert "| 90.0 ± 10.0 |" in row and row.endswith("| n/a | +30.0 (> 1 sd) |")
    assert next(line for line in lines if line.startswith("| Tea | full coupling")).endswith("+5.0 (within 1 sd) |")
    ner = next(line for line in lines if line.startswith("| Coffee | spaCy ner | 1 |")).split(" | ")
    assert ner[3:10] == ["65.0"] * 7  # one seed: no sd
    mean_row = next(line for line in lines if line.startswith("| **mean over 2 verticals** | full coupling | 3 |"))
    assert "| 77.5 ± 10.0 |" in mean_row and mean_row.endswith("+17.5 (> 1 sd) |")


def per_tag(**tags):
    """tag=(f, train_count, support) -> a scores dict with a per_tag block (p = r = f)."""
    return {"per_tag": {t: {"p": f, "r": f, "f": f, "train_count": n, "support": s} for t, (f, n, s) in tags.items()}}


def test_tag_improvements_sorting_and_rare_flags():
    single = [per_tag(**{"B-A": (0.2, 5, 3), "B-B": (0.9, 100, 9), "B-C": (0.0, 3, 1), "B-D": (0.1, 1, 1), "B-X": (0.0, 0, 0)}),
              per_tag(**{"B-A": (0.4, 5, 3), "B-B": (0.9, 100, 9), "B-C": (0.0, 3, 1), "B-D": (0.1, 1, 1)})]
    multi = [per_tag(**{"B-A": (0.8, 5, 3), "B-B": (0.85, 100, 9), "B-C": (0.3, 3, 1), "B-D": (0.4, 1, 1)})]
    rows = tag_improvements(single, multi, rare_max=15)
    assert [r["tag"] for r in rows] == ["B-A", "B-D", "B-C", "B-B"]  # B-X was never in the gold: left out
    assert [r["improvement"] for r in rows] == pytest.approx([0.5, 0.3, 0.3, -0.05])
    assert rows[0]["single"]["f"] == pytest.approx(0.3) and rows[0]["relative_gain"] == pytest.approx(0.5 / 0.3)
    assert rows[2]["relative_gain"] is None  # single F1 0
    assert [r["rare"] for r in rows] == [True, True, True, False]
    assert [r["rare"] for r in tag_improvements(single, multi, rare_max=3)] == [False, True, True, False]


def test_alignment_score_on_hand_made_attention():
    tags1 = ["O", "B-Brand", "I-Brand", "B-Size", "I-Size", "B-Color", "I-Color", "B-Origin", "I-Origin"]
    tags2 = ["O", "B-brand", "I-brand", "B-Size", "I-Size", "B-Flavor", "I-Flavor", "B-Origin", "I-Origin"]
    m = numpy.zeros((9, 9))
    m[1] = [0.1, 0.5, 0.2, 0.1, 0, 0.1, 0, 0, 0]  # B-Brand -> brand (0.7)
    m[2] = [0, 0.1, 0.1, 0.3, 0.3, 0, 0, 0, 0]  # I-Brand -> Size (0.75); mean with B-Brand keeps brand first
    m[3] = [0, 0.1, 0.1, 0.2, 0, 0.3, 0.3, 0, 0]  # B-Size -> Flavor; I-Size has no attention
    m[5] = [0, 1, 0, 0, 0, 0, 0, 0, 0]  # Color is not a shared name; Origin (shared) has no attention
    result = alignment_score(m, tags1, tags2)
    assert result["n_shared"] == 3 and result["n_evaluated"] == 2
    assert result["aligned"] == ["brand"] and result["score"] == 0.5
    assert result["best_partner"] == {"brand": "brand", "size": "flavor"}
    assert top_pairs(m, tags1, tags2, k=2) == [{"anchor": "B-Color", "partner": "B-brand", "attention": 1.0},
                                              {"anchor": "B-Brand", "partner": "B-brand", "attention": 0.5}]


def attention_json(scale=1.0):
    eye = numpy.eye(len(TAGS)) * 0.6 + 0.4 / len(TAGS)
    return {"verticals": ["Coffee", "Tea"], "tags1": TAGS, "tags2": TAGS,
            **{key: (eye * scale).tolist() for key in ("context_12", "label_12", "context_21", "label_21")}}


def test_average_attention_and_heatmap_png(tmp_path):
    averaged = average_attention([attention_json(1.0), attention_json(0.5)])
    assert averaged["label_12"][1, 1] == pytest.approx(0.75 * (0.6 + 0.4 / 7))
    with pytest.raises(ValueError, match="tags1 differ"):
        average_attention([attention_json(), dict(attention_json(), tags1=TAGS[:3])])
    path = plot_attention(averaged, tmp_path / "a.png", "Coffee + Tea")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = imread(path).shape
    assert height > 400 and width > 400


def test_system_names():
    assert system_name("single", "single", "configs/single.cfg") == "single"
    assert system_name("single", "single", "/x/configs/baseline_ner.cfg") == "spaCy ner"
    assert [system_name("pair", c) for c in ("none", "cce", "lce", "full")] == ["hard sharing", "cce", "lce", "full coupling"]
    assert system_name("pair", "full", "configs/pair_trf.cfg") == "full coupling [pair_trf]"
    assert system_name("single", "single", "/x/single_trf.cfg") == "single [single_trf]"
    assert system_name("group", "none", "configs/pair.cfg") == "group hard sharing"


def write_run(path, kind, coupling, seed, verticals, config="configs/single.cfg"):
    path.mkdir(parents=True)
    srsly.write_json(path / "run.json", {
        "kind": kind, "coupling": coupling, "seed": seed, "config": config,
        "verticals": {v: {"model": os.path.relpath(m, path), "corpus": os.path.relpath(c, path)} for v, (m, c) in verticals.items()},
    })
    return path


def test_report_cli_on_fake_runs(trained_single, data_dir, tmp_path):
    coffee, tea = (trained_single, data_dir / "coffee"), (trained_single, data_dir / "tea")
    runs = [write_run(tmp_path / f"single{s}", "single", "single", s, {"Coffee": coffee}) for s in (0, 1)]
    runs.append(write_run(tmp_path / "ner0", "single", "single", 0, {"Coffee": coffee}, config="configs/baseline_ner.cfg"))
    runs.append(write_run(tmp_path / "full0", "pair", "full", 0, {"Coffee": coffee, "Tea": tea}))
    srsly.write_json(runs[-1] / "attention.json", attention_json())
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", *map(str, runs), "--output", str(out)])
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if "macro-F1" in line]
    assert len(progress) == 5 and not any("cached" in line for line in progress)
    assert all((run / "eval_coffee.json").is_file() for run in runs) and (runs[-1] / "eval_tea.json").is_file()

    expected = evaluate_pipeline(trained_single, data_dir / "coffee" / "test.spacy", data_dir / "coffee" / "train.spacy")
    table3 = json.loads((out / "table3.json").read_text())
    assert table3["systems"] == ["single", "spaCy ner", "full coupling"]
    single = table3["verticals"]["Coffee"]["single"]
    assert single["n_seeds"] == 2 and single["seeds"] == [0, 1]
    assert single["macro_f1"]["mean"] == pytest.approx(expected["macro_f1"]) and single["macro_f1"]["sd"] == pytest.approx(0.0)
    assert table3["verticals"]["Coffee"]["full coupling"]["delta"]["macro_f1"]["exceeds_sd"] is False
    assert list(table3["verticals"]["Tea"]) == ["full coupling"]

    table4 = json.loads((out / "table4.json").read_text())
    assert list(table4) == ["Coffee"] and table4["Coffee"]["multi"] == "full coupling"
    rows = table4["Coffee"]["rows"]
    assert {r["tag"] for r in rows} == {t for t, row in expected["per_tag"].items() if row["support"] > 0}
    assert all(r["improvement"] == 0.0 and not r["rare"] for r in rows)

    figure = json.loads((out / "figure4.json").read_text())
    assert [f["png"] for f in figure] == ["attention_coffee_tea.png"]
    assert figure[0]["terms"]["LCE"]["alignment"]["score"] == 1.0
    assert (out / "attention_coffee_tea.png").read_bytes()[:4] == b"\x89PNG"
    readme = (out / "README.md").read_text()
    assert "![Coffee + Tea label-label attention](attention_coffee_tea.png)" in readme
    assert "../single0 (single, seed 0)" in readme and "../ner0 (spaCy ner, seed 0)" in readme and "Seeds: 0, 1." in readme
    assert (out / "table3.md").read_text() in readme + "\n"
    assert "### Coffee: single vs full coupling" in (out / "table4.md").read_text()

    again = CliRunner().invoke(app, ["report", *map(str, runs), "--output", str(out)])
    assert again.exit_code == 0 and again.stderr.count("cached") == 5
    # another rare-tag threshold invalidates the cache: every fixture tag is seen < 100 times
    rare = CliRunner().invoke(app, ["report", str(runs[0]), str(runs[-1]), "--output", str(out), "--rare-max", "100"])
    assert rare.exit_code == 0 and "cached" not in rare.stderr
    assert json.loads((out / "table3.json").read_text())["verticals"]["Coffee"]["single"]["rare_tag_f1"]["mean"] is not None


def test_report_cli_missing_run_json(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["report", str(tmp_path / "empty"), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'empty'}: no run.json (not a training output of 'train', 'train-pair' or 'train-group')"


def test_figure4_is_drawn_for_group_runs(tmp_path):
    """train-group writes attention/<a>+<b>.json per coupled pair; the report reads them like a pair's attention.json."""
    import srsly

    from spacy_mtlave.evaluation.attention import figure4
    from spacy_mtlave.training.run_info import read_run

    tags = {"Coffee": ["O", "B-Brand", "I-Brand"], "Tea": ["O", "B-Brand", "B-Size"], "Cocoa": ["O", "B-Brand"]}
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"group{seed}"
        (run / "attention").mkdir(parents=True)
        srsly.write_json(run / "run.json", {"kind": "group", "coupling": "full", "seed": seed, "config": "pair.cfg", "overrides": {},
                                            "verticals": {v: {"model": v.lower(), "corpus": v.lower()} for v in tags}})
        for a, b in (("Coffee", "Tea"), ("Coffee", "Cocoa")):
            n1, n2 = len(tags[a]), len(tags[b])
            matrix = numpy.full((n1, n2), 1.0 / n2)
            matrix[1, 1] = 0.9  # Brand attends to Brand
            srsly.write_json(run / "attention" / f"{a.lower()}+{b.lower()}.json", {
                "verticals": [a, b], "tags1": tags[a], "tags2": tags[b],
                **{key: (matrix if key.endswith("12") else matrix.T).tolist() for key in ("context_12", "label_12", "context_21", "label_21")}})
        runs.append(read_run(run))
    figures = figure4(runs, tmp_path / "report")
    assert sorted(tuple(f["verticals"]) for f in figures) == [("Coffee", "Cocoa"), ("Coffee", "Tea")]
    assert all(f["seeds"] == [0, 1] and f["system"] == "group full coupling" for f in figures)
    assert all((tmp_path / "report" / f["png"]).is_file() for f in figures)
    assert figures[0]["terms"]["CCE"]["top_pairs"][0]["anchor"].endswith("Brand")


def test_report_attribute_value_columns(trained_single, data_dir, tmp_path):
    """``report --test-jsonl`` adds ExtractGPT's attribute-value metric per vertical (issue 15), equal to
    ``evaluate --metric attribute-values`` on that vertical's offers; without it the columns are not shown."""
    import spacy as _spacy
    from spacy.tokens import DocBin

    from spacy_mtlave.evaluation.attribute_values import evaluate_attribute_values

    docs = list(DocBin().from_disk(data_dir / "coffee" / "test.spacy").get_docs(_spacy.blank("en").vocab))
    test = tmp_path / "test.jsonl"
    lines = []
    for doc in docs:
        scores = {}
        for ent in doc.ents:
            scores.setdefault(ent.label_, {})[ent.text] = 1
        lines.append(json.dumps({"input": doc.text, "category": "Coffee", "target_scores": scores}))
    test.write_text("\n".join(lines) + "\n")
    run = write_run(tmp_path / "single0", "single", "single", 0, {"Coffee": (trained_single, data_dir / "coffee")})
    plain = CliRunner().invoke(app, ["report", str(run), "--output", str(tmp_path / "plain")])
    assert plain.exit_code == 0 and "AV micro-F1" not in (tmp_path / "plain" / "table3.md").read_text()
    result = CliRunner().invoke(app, ["report", str(run), "--output", str(tmp_path / "av"), "--test-jsonl", str(test)])
    assert result.exit_code == 0, result.output
    assert "cached" not in result.stderr  # the plain report's cache lacks the attribute-value metric
    table3 = json.loads((tmp_path / "av" / "table3.json").read_text())
    expected = evaluate_attribute_values({"Coffee": trained_single}, test)["per_category"]["Coffee"]["micro"]
    assert table3["verticals"]["Coffee"]["single"]["av_f1"]["mean"] == pytest.approx(expected["f1"])
    assert "AV micro-F1" in (tmp_path / "av" / "table3.md").read_text()
