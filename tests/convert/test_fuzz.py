"""Issue 17: property-based fuzzing of every converter through the command line. For any input file: no traceback,
exit code 0 or 2 (2 with one ``error:`` line and nothing written), and on success every input record is either a doc
in a DocBin or counted as skipped, the DocBins hold exactly the counted docs, and no temporary file is left."""
import csv
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin

from spacy_mtlave.convert import reference_nlp

from ..helpers import (
    CATEGORIES,
    WORDS,
    any_line,
    assert_no_traceback,
    assert_one_line_error,
    invoke,
    json_literal,
    json_object,
    json_values,
    messy,
    one_in,
)

EXAMPLES = 100
NEWLINES = ["\n", "\r\n", "\r"]
TAGS = ["O", "O", "B-Brand", "I-Brand", "B_Size", "I_Size", "L-Size", "U-Color", "B-Net content"]
BAD_TAGS = ["X-Brand", "B-", "o", ""]
words = st.sampled_from([w for w in WORDS if w.strip()])


@st.composite
def titles(draw):
    return " ".join(draw(st.lists(words, min_size=1, max_size=6)))


def rarely(good, bad, odds: int = 12):
    """Mostly a draw of ``good``, 1 in ``odds`` times one of ``bad`` (values that make a structural error)."""
    return one_in(odds).flatmap(lambda odd: st.sampled_from(bad) if odd else good)


def categories():
    return rarely(st.sampled_from(CATEGORIES).map(json.dumps), ["null", "3", "[]"])


@st.composite
def attribute_values_record(draw):
    title = draw(titles())
    scores = []
    for attribute in draw(st.lists(rarely(st.sampled_from(["Brand", "Color", "Size", "Brand"]), [" ", "n/a"]), max_size=3)):
        entry = rarely(st.sampled_from(["1", '{"pid": [0]}', '{"pid": 0}', '{"score": 1}', "1.0"]), ['{"pid": [3]}', "2", "true", '{"pid": "x"}'], 20)
        values = [(draw(st.sampled_from(title.split() + ["n/a", "Zeta", ""])), draw(entry)) for _ in range(draw(st.integers(0, 2)))]
        scores.append((attribute, json_object(values)))
    return draw(messy([("input", json_literal(title, draw(st.sampled_from(["", "", "\\ud800"])))), ("category", draw(categories())), ("target_scores", json_object(scores))], odd=25))


@st.composite
def mave_record(draw):
    pid = draw(st.sampled_from(['"a"', '"b"', "1", "2", '"1"', "1e999", "9" * 5000]))
    texts = [f"{'Acme' if len(pid) % 2 else 'Yogi'} green tea , 12 oz", "Made in Italy"]  # the same for the same id
    attributes = []
    for key, value in draw(st.lists(st.sampled_from([("Brand", "Acme"), ("Brand", "Yogi"), ("Size", "12 oz"), ("Color", "green")]), max_size=3)):
        begin = texts[0].find(value)
        if begin < 0:
            value = texts[0][:4]
        begin, end = draw(rarely(st.just((max(begin, 0), max(begin, 0) + len(value))), [(-1, 2), (3, 99), (2, 1)], 20))
        evidence = json_object([("value", json.dumps(value)), ("pid", "0"), ("begin", str(begin)), ("end", str(end))])
        attributes.append(json_object([("key", json.dumps(key)), ("evidences", f"[{evidence}]")]))
    paragraphs = "[" + ", ".join(json_object([("text", json.dumps(t)), ("source", '"title"')]) for t in texts) + "]"
    category = draw(rarely(st.just(json.dumps(CATEGORIES[len(pid) % 3])), ['"Coffee"', "null", "3"], 20))  # mostly one per id
    # the id is kept as drawn: records are grouped by id, and mave_file counts the ids it drew
    line = draw(messy([("id", pid), ("category", category), ("paragraphs", paragraphs), ("attributes", "[" + ", ".join(attributes) + "]")],
                      odd=30, keep=("id",)))
    return line, pid


@st.composite
def specification(draw):
    pairs = [(draw(st.sampled_from(["Color", "color ", "Size", "", "Ideal For"])), draw(st.sampled_from(['"Red"', '"NA"', '["Red", "Blue"]', '{"value": "Red"}', '{"shade": 1}', "null", "12"])))
             for _ in range(draw(st.integers(0, 3)))]
    entries = "[" + ", ".join(json_object([("key", json.dumps(k)), ("value", v)]) for k, v in pairs) + "]"
    shapes = [json_object(pairs), json_object([("product_specification", entries)]), entries, json.dumps(json_object(pairs).replace(": ", "=>"))]
    return draw(rarely(st.sampled_from(shapes), [draw(json_values())], 15))


@st.composite
def specs_row(draw):
    return [draw(titles()), draw(st.sampled_from(["", "Red cotton shirt", "Blue"])), draw(st.sampled_from(["Clothing", "", "Shoes", '["Clothing >> Women"]'])), draw(specification())]


def lines_file(draw, record, junk_odds: int = 25):
    """A JSONL file: records, blank lines and (1 in ``junk_odds``) any line, joined by one kind of line break."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        lines.append(draw(any_line()) if draw(one_in(junk_odds)) else "" if draw(one_in(junk_odds)) else draw(record))
    return draw(st.sampled_from(NEWLINES)).join(lines) + draw(st.sampled_from(["", "\n"]))


def non_blank(text: str) -> int:
    return sum(1 for line in re.split(r"\r\n|\r|\n", text) if line.strip())


@st.composite
def attribute_values_file(draw):
    text = lines_file(draw, attribute_values_record())
    return text, non_blank(text), "in.jsonl", []


@st.composite
def mave_file(draw):
    lines, ids = [], set()
    for _ in range(draw(st.integers(1, 6))):
        line, pid = draw(mave_record())
        lines.append(line)
        ids.add(pid.strip('"') if len(pid) < 100 else pid)
    if draw(one_in(25)):
        lines.append(draw(any_line()))
    return draw(st.sampled_from(NEWLINES)).join(lines), len(ids), "in.jsonl", []


@st.composite
def conll_file(draw):
    newline, lines, n_docs = draw(st.sampled_from(NEWLINES)), [], 0
    if draw(st.booleans()):
        lines.append("# vertical = " + draw(st.sampled_from(["Tea", "Coffee", "咖啡", ""])))
    for _ in range(draw(st.integers(1, 4))):
        tokens = draw(st.lists(st.tuples(words.map(lambda w: w.replace(" ", "_")), st.sampled_from(TAGS)), min_size=1, max_size=6))
        if draw(one_in(20)):
            tokens.append(("bad", draw(st.sampled_from(BAD_TAGS))))
        lines += [f"{word}\t{tag}" for word, tag in tokens] + [""] * draw(st.integers(1, 2))
        n_docs += 1
        if draw(one_in(6)):
            lines.append("# vertical = " + draw(st.sampled_from(["Tea", "Coffee"])))
    options = [] if draw(st.booleans()) else ["--vertical", "Tea"]
    return newline.join(lines), n_docs, "in.conll", options


@st.composite
def specs_csv_file(draw):
    extra = draw(st.sampled_from([[], ["category"], ["x"]]))  # a column name given twice is merged
    header = ["product_name", "description", "category", "product_specifications"] + extra
    rows = [row + [row[2] if extra == ["category"] else ""] * len(extra) for row in draw(st.lists(specs_row(), min_size=1, max_size=5))]
    rows += [[""] * len(header)] * draw(st.integers(0, 2))  # empty rows (Flipkart's file ends in thousands)
    out = io.StringIO()
    csv.writer(out, lineterminator=draw(st.sampled_from(NEWLINES))).writerows([header] + rows)
    return out.getvalue(), len(rows), "in.csv", []


@st.composite
def specs_jsonl_file(draw):
    record = specs_row().map(lambda row: json_object(zip(["product_name", "description", "category", "product_specifications"],
                                                         [json.dumps(row[0]), json.dumps(row[1]), json.dumps(row[2]), row[3]])))
    text = lines_file(draw, record)
    return text, non_blank(text), "in.jsonl", []


FILES = {
    "attribute-values": attribute_values_file(),
    "mave": mave_file(),
    "conll": conll_file(),
    "specs (csv)": specs_csv_file(),
    "specs (jsonl)": specs_jsonl_file(),
}


def check_conversion(fmt: str, content: str, n_records: int, name: str, options) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / name, Path(tmp) / "out"
        source.write_bytes(content.encode("utf-8", "surrogateescape"))
        result = invoke("convert", source, out, "--format", fmt.split()[0], "--dev-every", 3, *options)
        assert_no_traceback(result)
        event(f"exit {result.exit_code}")
        if result.exit_code == 2:
            assert_one_line_error(result)
            assert not out.exists()
            return
        stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
        source_stats = stats["sources"]["train"]
        docs = sum(v["examples"]["train"] + v["examples"]["dev"] for v in stats["verticals"].values())
        assert source_stats["records"] == n_records
        assert docs + sum(source_stats["skipped"].values()) == n_records  # every record placed or counted
        on_disk = sum(len(DocBin().from_disk(p)) for p in out.rglob("*.spacy"))
        assert on_disk == docs
        assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
        for doc in (d for p in out.rglob("*.spacy") for d in DocBin().from_disk(p).get_docs(reference_nlp().vocab)):
            assert all(span.text.strip() for span in doc.ents)


@pytest.mark.parametrize("fmt", list(FILES))
@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(data=st.data())
def test_any_input_is_converted_or_refused_in_one_line(fmt, data):
    content, n_records, name, options = data.draw(FILES[fmt], label="input file")
    check_conversion(fmt, content, n_records, name, options)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(fmt=st.sampled_from(["attribute-values", "mave", "conll", "specs"]), lines=st.lists(any_line(), min_size=1, max_size=4),
       newline=st.sampled_from(NEWLINES), suffix=st.sampled_from(["jsonl", "csv", "conll"]))
def test_any_bytes_in_any_format_end_without_a_traceback(fmt, lines, newline, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"in.{suffix}"
        source.write_bytes(newline.join(lines).encode("utf-8", "surrogateescape"))
        result = invoke("convert", source, Path(tmp) / "out", "--format", fmt)
        assert_no_traceback(result)
        if result.exit_code == 2:
            assert_one_line_error(result)
