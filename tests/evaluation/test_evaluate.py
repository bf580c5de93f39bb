"""The `evaluate` command: printed table, JSON keys, label mismatches and bad input."""
import json

import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.evaluation.evaluate import (
    evaluate_pipeline,
    format_scores,
    label_warning,
)

KEYS = {"macro_p", "macro_r", "macro_f1", "accuracy", "ents_p", "ents_r", "ents_f", "rare_tag_f1", "per_tag"}


def test_evaluate_cli_writes_json_and_table(trained_single, data_dir, tmp_path):
    corpus = data_dir / "coffee"
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["evaluate", str(trained_single), str(corpus / "test.spacy"), "--train", str(corpus / "train.spacy"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert KEYS <= set(scores)
    assert scores["unknown_labels"] == {"not_in_model": [], "not_in_test": []}
    assert "warning" not in result.stderr
    brand = scores["per_tag"]["B-Brand"]
    assert {"tp", "fp", "fn", "p", "r", "f", "train_count"} <= set(brand)
    assert brand["train_count"] > 0 and brand["tp"] + brand["fn"] == brand["support"]
    assert scores["rare_tag_f1"] is None  # every fixture tag is seen > 15 times in training
    assert "| macro-F1 | " + f"{100 * scores['macro_f1']:.1f} |" in result.stdout
    assert "| B-Brand | " in result.stdout


def test_evaluate_without_train_has_no_train_counts(trained_single, data_dir):
    scores = evaluate_pipeline(trained_single, data_dir / "coffee" / "test.spacy")
    assert all("train_count" not in row for row in scores["per_tag"].values())
    header = next(line for line in format_scores(scores).splitlines() if line.startswith("| tag |"))
    assert header == "| tag | support | tp | fp | fn | P | R | F1 |"


def test_label_mismatch_warns_and_counts_errors(trained_single, tmp_path):
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Acme red coffee , 12 oz")
    doc.ents = [doc.char_span(0, 4, label="Manufacturer")]
    DocBin(docs=[doc]).to_disk(tmp_path / "test.spacy")
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["evaluate", str(trained_single), str(tmp_path / "test.spacy"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["unknown_labels"]["not_in_model"] == ["Manufacturer"]
    assert "Brand" in scores["unknown_labels"]["not_in_test"]
    assert scores["per_tag"]["B-Manufacturer"]["fn"] == 1 and scores["macro_f1"] == 0.0
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "Manufacturer" in warning[0] and "Brand" in warning[0]


def test_label_warning_is_none_without_mismatch():
    assert label_warning({"unknown_labels": {"not_in_model": [], "not_in_test": []}}) is None
    assert label_warning({"unknown_labels": {"not_in_model": None, "not_in_test": ["Size"]}}) == (
        "warning: predicted labels absent from the test (and training) data (false positives): Size")


def test_empty_or_missing_test_set_exits_2(trained_single, tmp_path):
    DocBin(docs=[]).to_disk(tmp_path / "empty.spacy")
    runner = CliRunner()
    for path, message in ((tmp_path / "empty.spacy", "no documents"), (tmp_path / "missing.spacy", "not found")):
        result = runner.invoke(app, ["evaluate", str(trained_single), str(path)])
        assert result.exit_code == 2
        assert result.stderr.strip() == f"error: {path}: {message}"
    result = runner.invoke(app, ["evaluate", str(tmp_path / "no_model"), str(tmp_path / "empty.spacy")])
    assert result.exit_code == 2 and "model directory not found" in result.stderr
