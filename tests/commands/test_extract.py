"""The ``extract`` and ``show`` commands: streaming JSONL extraction with error lines, and the displaCy rendering."""
import json
from pathlib import Path
from typing import List, Tuple

import pytest
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.extract import extract_file, load_model
from spacy_mtlave.show import label_colors

N_LINES = 10_000
LONG = 50_000
runner = CliRunner()


def long_text(seed: str) -> str:
    """A 50,000-character product description with HTML, emoji and the fixture's attribute words."""
    return (f"{seed} Lavazza dark espresso beans, <b>12 oz</b> 😀 bag; notes of cocoa & berries. " * 700)[:LONG]


def make_input(path: Path, n: int) -> List[Tuple[str, object]]:
    """Write ``n`` JSONL lines of mixed quality; returns per line ("ok", id) | ("blank", id) | ("error", message part)."""
    expected, lines = [], []
    for i in range(n):
        kind = i % 10
        if i in (6400, 6401):  # the long texts, in one batch of 64
            lines.append(json.dumps({"id": f"long{i}", "input": long_text(str(i))}))
            expected.append(("ok", f"long{i}"))
        elif kind == 1:
            lines.append('{"id": %d, "input": "Acme dark coffee' % i)  # truncated JSON
            expected.append(("error", "invalid JSON"))
        elif kind == 2:
            lines.append(json.dumps({"id": i, "input": ""}))
            expected.append(("error", "empty"))
        elif kind == 3:
            lines.append(json.dumps({"id": i, "title": "Acme dark coffee"}))
            expected.append(("error", "no 'input' field"))
        elif kind == 4 and i % 20 == 4:
            lines.append(json.dumps([i, "Acme dark coffee"]))
            expected.append(("error", "not a JSON object"))
        elif kind == 4:
            lines.append(json.dumps({"id": i, "input": 12}))
            expected.append(("error", "not a string"))
        elif kind == 5:
            lines.append(json.dumps({"id": i, "input": f"<p>Yogi herbal tea 😀🍵 &amp; {i} bags</p>, 20 count"}, ensure_ascii=i % 20 == 5))
            expected.append(("ok", i))
        elif kind == 6:
            lines.append(json.dumps({"id": i, "input": " \t "}))
            expected.append(("blank", i))
        elif kind == 7:
            lines.append(json.dumps({"input": "Folgers black coffee , 1 lb"}))  # no id
            expected.append(("ok", None))
        else:
            lines.append(json.dumps({"id": f"sku-{i}", "input": "Acme dark coffee , 12 oz", "extra": {"x": [1]}}))
            expected.append(("ok", f"sku-{i}"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return expected


def texts_of(path: Path) -> List[object]:
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        texts.append(record.get("input") if isinstance(record, dict) else None)
    return texts


@pytest.mark.slow
def test_extract_10000_mixed_lines(trained_single, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    expected = make_input(source, N_LINES)
    result = runner.invoke(app, ["extract", str(trained_single), str(source), str(target), "--batch-size", "64"])
    assert result.exit_code == 0, result.output
    n_errors = sum(kind == "error" for kind, _ in expected)
    assert result.stderr.strip().splitlines()[-1].startswith(f"{N_LINES} lines, {N_LINES - n_errors} records, {n_errors} errors, ")
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(records) == N_LINES
    texts = texts_of(source)
    n_attributes = 0
    for n, (record, (kind, value), text) in enumerate(zip(records, expected, texts), start=1):
        if kind == "error":
            assert record["line"] == n and value in record["error"], (n, record)
            continue
        assert set(record) == {"id", "attributes"} and record["id"] == value, (n, record)
        if kind == "blank":
            assert record["attributes"] == {}
        for label, values in record["attributes"].items():
            for item in values:
                assert text[item["start"]:item["end"]] == item["value"], (n, label, item)
                assert 0.0 <= item["confidence"] <= 1.0
                n_attributes += 1
    assert n_attributes > N_LINES // 2  # the model does extract
    long_records = [records[6400], records[6401]]
    assert all(r["attributes"] and max(i["end"] for v in r["attributes"].values() for i in v) > LONG - 100 for r in long_records)


def test_surrogates_and_bad_utf8_lines(trained_single, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b'{"id": "\\ud800", "input": "Acme \\udc00 dark coffee"}\n\xff\xfe bad\n{"id": 3, "input": "Tazo red tea"}')
    stats = extract_file(trained_single, source, target, progress=False)
    assert (stats.lines, stats.records, stats.errors) == (3, 2, 1)
    first, second, third = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert first["id"] == "\ud800"  # written back as the same JSON escape
    assert all(i["value"] == "Acme \ufffd dark coffee"[i["start"]:i["end"]] for v in first["attributes"].values() for i in v)
    assert second == {"line": 2, "error": "not valid UTF-8"}
    assert third["id"] == 3


def test_max_length_is_an_error_line(trained_single, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"id": 1, "input": "Acme dark coffee " * 10}) + "\n" + json.dumps({"id": 2, "input": "Acme"}) + "\n")
    extract_file(trained_single, source, target, max_length=100, progress=False)
    first, second = [json.loads(line) for line in target.read_text().splitlines()]
    assert first == {"line": 1, "error": "field 'input' has 170 characters, more than max_length 100"}
    assert second["id"] == 2


def test_two_processes_keep_order(trained_single, tmp_path):
    source = tmp_path / "in.jsonl"
    make_input(source, 300)
    extract_file(trained_single, source, tmp_path / "one.jsonl", batch_size=16, progress=False)
    stats = extract_file(trained_single, source, tmp_path / "two.jsonl", batch_size=16, n_process=2, progress=False)
    assert stats.lines == 300
    assert (tmp_path / "two.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()


def test_custom_fields(trained_single, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"sku": "A1", "input": "no", "title": "Acme dark coffee , 12 oz"}) + "\n")
    result = runner.invoke(app, ["extract", str(trained_single), str(source), str(target), "--text-field", "title", "--id-field", "sku"])
    assert result.exit_code == 0, result.output
    record = json.loads(target.read_text())
    assert record["id"] == "A1" and record["attributes"]["Size"][0]["value"] == "12 oz"


@pytest.mark.parametrize("what", ["model", "input"])
def test_missing_model_or_input_exits_2_with_one_line(trained_single, tmp_path, what):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"id": 1, "input": "Acme"}) + "\n")
    model = str(tmp_path / "no_model") if what == "model" else str(trained_single)
    if what == "input":
        source = tmp_path / "missing.jsonl"
    result = runner.invoke(app, ["extract", model, str(source), str(target)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ("no_model" if what == "model" else "missing.jsonl") in lines[0]
    assert not target.exists()


def test_load_model_names_the_model():
    with pytest.raises(ValueError, match="cannot load model 'en_ave_not_installed'"):
        load_model("en_ave_not_installed")


def test_show_writes_html_with_labels_and_colours(trained_single, tmp_path):
    text = "Lavazza dark espresso , 12 oz"
    output = tmp_path / "show.html"
    result = runner.invoke(app, ["show", str(trained_single), text, "--output", str(output)])
    assert result.exit_code == 0, result.output
    html = output.read_text(encoding="utf-8")
    doc = load_model(trained_single)(text)
    assert {ent.label_ for ent in doc.ents} == {"Brand", "Flavor", "Size"}
    colors = label_colors(["Brand", "Flavor", "Size"])
    for ent in doc.ents:
        assert ent.text in html and f">{ent.label_}</span>" in html and colors[ent.label_] in html
    assert html.startswith("<!DOCTYPE html>")
    stdout = runner.invoke(app, ["show", str(trained_single), text])
    assert stdout.exit_code == 0 and "12 oz" in stdout.stdout and "<html" in stdout.stdout


def test_label_colours_are_deterministic_and_distinct():
    labels = [f"label {i}" for i in range(60)] + ["Net content", "Brand"]
    colors = label_colors(labels)
    assert colors == label_colors(list(reversed(labels)))
    assert len(set(colors.values())) == len(labels)
    assert all(len(c) == 7 and c.startswith("#") for c in colors.values())


def test_records_with_unicode_line_separators_stay_one_line():
    """NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are line breaks to str.splitlines() (found by the fuzz test with an
    id of "\\x85"): they are written escaped, and the record reads back unchanged."""
    import json

    from spacy_mtlave.extract import dumps_record

    record = {"id": "a\x85b\u2028c\u2029", "attributes": {"Brand": [{"value": "x\x85y", "start": 0, "end": 3, "confidence": 0.5}]}}
    line, is_error, _ = dumps_record(record, 1)
    assert not is_error and len(line.splitlines()) == 1 and json.loads(line) == record
