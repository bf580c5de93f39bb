"""``convert --format spans-jsonl | label-studio`` and ``--merge-into`` (issue 19): annotations back into the corpus."""
import json

import pytest
from spacy.tokens import DocBin

from spacy_mtlave.convert import convert, reference_nlp
from spacy_mtlave.vertical import set_vertical

from ..helpers import assert_one_line_error, invoke


def docs(path):
    return list(DocBin().from_disk(path).get_docs(reference_nlp().vocab))


def ents(doc):
    return [(span.text, span.label_) for span in doc.ents]


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def task(text, *spans, answer="accept", vertical="Tea"):
    record = {"text": text, "spans": [{"start": s, "end": e, "label": label} for s, e, label in spans], "meta": {"vertical": vertical}}
    if answer is not None:
        record["answer"] = answer
    return record


def ls_task(text, *regions, cancelled=False, vertical="Tea", annotations=True):
    result = [{"id": f"r{i}", "from_name": "label", "to_name": "text", "type": "labels",
               "value": {"start": s, "end": e, "text": text[s:e], "labels": [label]}} for i, (s, e, label) in enumerate(regions)]
    out = {"id": 1, "data": {"text": text, "vertical": vertical}, "predictions": [{"result": result}]}
    if annotations:
        out["annotations"] = [{"id": 1, "result": result, "was_cancelled": cancelled}]
    return out


# spans-jsonl ----------------------------------------------------------------------------------------------------------


def test_spans_jsonl_accepts_skips_rejects_and_expands(tmp_path):
    source = write_jsonl(tmp_path / "a.jsonl", [
        task("Acme green tea, 20 count", (0, 4, "Brand"), (16, 24, "Size")),
        task("Yogi herbal tea", (0, 4, "Brand"), answer="reject"),
        task("Tazo black tea", (0, 4, "Brand"), answer="ignore"),
        task("Bigelow lemon tea", (2, 9, "Brand"), (8, 13, "Flavor"), answer=None),  # 'gelow l': mid-token; overlaps 'lemon'
    ])
    report = convert(source, tmp_path / "out", "spans-jsonl", dev_every=0)
    tea = docs(tmp_path / "out" / "tea" / "train.spacy")
    # 'gelow l' (2, 9) expands to 'Bigelow lemon', which overlaps 'lemon' (8, 13): the longer wins, the other is counted
    assert [ents(d) for d in tea] == [[("Acme", "Brand"), ("20 count", "Size")], [("Bigelow lemon", "Brand")]]
    source_stats = report.stats["sources"]["train"]
    assert source_stats["skipped"] == {"answer ignore": 1, "answer reject": 1}
    assert source_stats["records"] == 4
    vertical = report.stats["verticals"]["Tea"]
    assert vertical["skipped_records"] == 2
    assert source_stats["values"] == {"placed": 2, "expanded": 1, "not_placed": 0, "overlap_dropped": 1, "entry_skipped": 0}
    assert vertical["values_expanded"] == 1 and vertical["overlaps_dropped"] == 1
    lines = report.summary()
    assert "2 skipped (answer ignore: 1; answer reject: 1)" in lines[0]


def test_spans_jsonl_misaligned_span_is_expanded_and_counted(tmp_path):
    source = write_jsonl(tmp_path / "a.jsonl", [task("Acme green tea, 20 count", (1, 4, "Brand"), (6, 12, "Flavor"))])
    report = convert(source, tmp_path / "out", "spans-jsonl", dev_every=0)
    (doc,) = docs(tmp_path / "out" / "tea" / "train.spacy")
    assert ents(doc) == [("Acme", "Brand"), ("green tea", "Flavor")]  # 'reen t' expanded to whole tokens
    problems = report.stats["verticals"]["Tea"]["splits"]["train"]["problems"]
    assert {p["status"] for p in problems} == {"expanded"} and len(problems) == 2
    assert report.stats["verticals"]["Tea"]["values_expanded"] == 2


def test_spans_jsonl_vertical_option_and_category(tmp_path):
    records = [{"text": "Acme coffee", "spans": [{"start": 0, "end": 4, "label": "Brand"}], "category": "Coffee"}]
    report = convert(write_jsonl(tmp_path / "a.jsonl", records), tmp_path / "out", "spans-jsonl", dev_every=0)
    assert list(report.stats["verticals"]) == ["Coffee"]
    report = convert(write_jsonl(tmp_path / "a.jsonl", records), tmp_path / "out2", "spans-jsonl", dev_every=0, vertical="Cocoa")
    assert list(report.stats["verticals"]) == ["Cocoa"]


@pytest.mark.parametrize("bad,fragment", [
    ('{"text": "Acme tea", "spans": [', "a.jsonl:2: malformed JSON"),
    ('{"text": "Acme tea", "spans": [{"start": 0, "end": 4}], "meta": {"vertical": "Tea"}}', "a.jsonl:2: field 'spans[0].label': missing"),
    ('{"text": "Acme tea", "spans": [{"start": 0, "end": 40, "label": "Brand"}], "meta": {"vertical": "Tea"}}', "a.jsonl:2: field 'spans[0]': offsets [0, 40) out of range"),
    ('{"text": "Acme tea", "spans": [{"start": "0", "end": 4, "label": "Brand"}], "meta": {"vertical": "Tea"}}', "a.jsonl:2: field 'spans[0].start': expected an integer"),
    ('{"text": "Acme tea", "spans": [], "answer": "maybe", "meta": {"vertical": "Tea"}}', "a.jsonl:2: field 'answer'"),
    ('{"text": "Acme tea", "spans": []}', "a.jsonl:2: field 'meta.vertical': no vertical"),
    ('{"spans": [], "meta": {"vertical": "Tea"}}', "a.jsonl:2: field 'text': missing"),
    ('[1, 2]', "a.jsonl:2: expected a JSON object"),
])
def test_spans_jsonl_malformed_record_is_one_line_with_file_and_line(tmp_path, bad, fragment):
    source = write_jsonl(tmp_path / "a.jsonl", [task("Acme green tea", (0, 4, "Brand")), bad])
    out = tmp_path / "out"
    assert_one_line_error(invoke("convert", source, out, "--format", "spans-jsonl"), fragment)
    assert not out.exists()


# Label Studio ---------------------------------------------------------------------------------------------------------


def test_label_studio_export(tmp_path):
    text = "Acme green tea ☕😀, 20 count"
    start = text.index("20")
    tasks = [
        ls_task("Acme green tea, 20 count", (0, 4, "Brand"), (16, 24, "Size")),
        ls_task("Yogi tea", (0, 4, "Brand"), cancelled=True),
        ls_task("Tazo tea", (0, 4, "Brand"), annotations=False),
        ls_task("Bigelow lemon tea", (1, 7, "Brand")),  # misaligned: expanded
    ]
    emoji = ls_task(text, (0, 4, "Brand"))  # offsets after the emoji are UTF-16 code units, as Label Studio counts them
    emoji["annotations"][0]["result"].append({"type": "labels", "from_name": "label", "to_name": "text",
                                              "value": {"start": start + 1, "end": start + 9, "text": "20 count", "labels": ["Size"]}})
    emoji["annotations"][0]["result"].append({"type": "choices", "value": {"choices": ["ok"]}})  # ignored
    tasks.append(emoji)
    source = tmp_path / "export.json"
    source.write_text(json.dumps(tasks, indent=2, ensure_ascii=False), encoding="utf-8")
    report = convert(source, tmp_path / "out", "label-studio", dev_every=0)
    tea = docs(tmp_path / "out" / "tea" / "train.spacy")
    assert [ents(d) for d in tea] == [[("Acme", "Brand"), ("20 count", "Size")], [("Bigelow", "Brand")], [("Acme", "Brand"), ("20 count", "Size")]]
    assert report.stats["sources"]["train"]["skipped"] == {"annotation cancelled": 1, "no annotation": 1}
    assert report.stats["verticals"]["Tea"]["values_expanded"] == 1


@pytest.mark.parametrize("bad,fragment", [
    ('[\n {"data": {"text": "Acme tea", "vertical": "Tea"}, "annotations": []},\n {"data": {"text": "x"}, \n', "export.json:4: malformed JSON"),
    ('[\n {"data": {"text": "Acme tea", "vertical": "Tea"}, "annotations": []},\n {"data": {"txt": "x", "vertical": "Tea"}}\n]', "export.json:3: field 'data.text': missing"),
    ('[\n {"data": {"text": "Acme tea", "vertical": "Tea"},\n  "annotations": [{"result": [{"type": "labels", "value": {"start": 0, "end": 4, "text": "Yogi", "labels": ["Brand"]}}]}]}\n]',
     "export.json:2: field 'annotations.result[0].value': text[0:4] is 'Acme'"),
    ('[\n {"data": {"text": "Acme tea", "vertical": "Tea"},\n  "annotations": [{"result": [{"type": "labels", "value": {"start": 0, "end": 4, "labels": []}}]}]}\n]',
     "export.json:2: field 'annotations.result[0].value.labels'"),
    ('{"a": 1} {"b": 2}', "export.json:1: malformed JSON: extra data"),
    ('"tasks"', "export.json:1: expected a JSON array of tasks"),
    ('[1]', "export.json:1: expected a task object"),
])
def test_label_studio_malformed_export_is_one_line(tmp_path, bad, fragment):
    source = tmp_path / "export.json"
    source.write_text(bad, encoding="utf-8")
    out = tmp_path / "out"
    assert_one_line_error(invoke("convert", source, out, "--format", "label-studio"), fragment)
    assert not out.exists()


# --merge-into ---------------------------------------------------------------------------------------------------------


def corpus(tmp_path, train, dev=(), test=()):
    nlp = reference_nlp()
    root = tmp_path / "corpus"
    (root / "tea").mkdir(parents=True)
    for part, texts in (("train", train), ("dev", dev), ("test", test)):
        if texts or part == "train":
            made = []
            for text in texts:
                doc = nlp.make_doc(text)
                set_vertical(doc, "Tea")
                made.append(doc)
            DocBin(docs=made, store_user_data=True).to_disk(root / "tea" / f"{part}.spacy")
    return root


def test_merge_into_adds_new_texts_once_and_keeps_dev_and_test_out(tmp_path):
    root = corpus(tmp_path, ["Acme green tea", "Yogi tea"], dev=["Tazo tea"], test=["Bigelow tea"])
    source = write_jsonl(tmp_path / "a.jsonl", [
        task("Yogi tea", (0, 4, "Brand")), task("Tazo tea", (0, 4, "Brand")), task("Bigelow tea", (0, 7, "Brand")),
        task("Twinings earl grey tea", (0, 8, "Brand")), task("Twinings earl grey tea", (0, 8, "Brand")),
        task("Lipton tea", (0, 6, "Brand"), answer="reject"),
    ])
    result = invoke("convert", source, tmp_path / "new", "--format", "spans-jsonl", "--merge-into", root)
    assert result.exit_code == 0, result.output
    merged = docs(root / "tea" / "train.spacy")
    assert [d.text for d in merged] == ["Acme green tea", "Yogi tea", "Twinings earl grey tea"]
    assert ents(merged[2]) == [("Twinings", "Brand")] and merged[2]._.vertical == "Tea"
    assert "2 -> 3 docs (1 added; skipped 1 already in train, 2 in dev or test, 1 duplicate in input)" in result.output
    assert (tmp_path / "new" / "tea" / "train.spacy").is_file()  # OUTPUT_DIR has the new annotations alone
    assert [d.text for d in docs(root / "tea" / "test.spacy")] == ["Bigelow tea"]


def test_merge_into_errors_before_writing(tmp_path):
    root = corpus(tmp_path, ["Acme green tea"])
    before = (root / "tea" / "train.spacy").read_bytes()
    source = write_jsonl(tmp_path / "a.jsonl", [task("Yogi tea", (0, 4, "Brand"), vertical="Cocoa")])
    assert_one_line_error(invoke("convert", source, tmp_path / "new", "--format", "spans-jsonl", "--merge-into", root), "cocoa/train.spacy", "no train.spacy of vertical 'Cocoa'")
    assert not (tmp_path / "new").exists()
    source = write_jsonl(tmp_path / "a.jsonl", [task("Yogi tea", (0, 4, "Brand"))])
    assert_one_line_error(invoke("convert", source, root, "--format", "spans-jsonl", "--merge-into", root), "--merge-into", "must differ from OUTPUT_DIR")
    assert_one_line_error(invoke("convert", source, tmp_path / "new", "--format", "spans-jsonl", "--merge-into", tmp_path / "nope"), "corpus folder not found")
    assert_one_line_error(invoke("convert", source, tmp_path / "new", "--format", "spans-jsonl", "--split", "test", "--merge-into", root), "--merge-into", "--split train")
    (root / "tea" / "train.spacy").write_bytes(b"not a docbin")
    assert_one_line_error(invoke("convert", source, tmp_path / "new", "--format", "spans-jsonl", "--merge-into", root), "tea/train.spacy", "not a readable .spacy file")
    (root / "tea" / "train.spacy").write_bytes(before)
    assert docs(root / "tea" / "train.spacy")[0].text == "Acme green tea"
