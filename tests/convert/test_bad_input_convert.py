"""Issue 17, ``convert``: every input record placed or counted, one-line errors before anything is written, outputs
moved into place together (cases 2, 3, 5, 6, 10, 11, 12 of the issue)."""
import json
import os
from types import SimpleNamespace

import pytest
from spacy.tokens import DocBin

import spacy_mtlave.outputs as outputs
from spacy_mtlave.convert import convert, reference_nlp
from spacy_mtlave.vertical import slugify

from ..helpers import assert_one_line_error, invoke


def product(title, category, **scores):
    return {"input": title, "category": category, "target_scores": scores}


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def rows(*products):
    return [json.dumps(p) for p in products]


def docs(path):
    return list(DocBin().from_disk(path).get_docs(reference_nlp().vocab))


def ents(doc):
    return [(span.text, span.label_) for span in doc.ents]


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_convert(source, out, fmt="attribute-values", *options):
    return invoke("convert", source, out, "--format", fmt, *options)


TEA = product("Acme green tea", "Tea", Brand={"Acme": 1})


# 2, 3: huge numbers and deep nesting -------------------------------------------------------------------------------


def test_a_5000_digit_integer_in_another_field_converts(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", rows(TEA) + ['{"input": "Yogi tea", "category": "Tea", "n": %s, "target_scores": {"Brand": {"Yogi": 1}}}' % ("7" * 5000)])
    report = convert(source, tmp_path / "out", "attribute-values", dev_every=0)
    assert report.stats["verticals"]["Tea"]["examples"]["train"] == 2


def test_a_5000_digit_integer_where_a_number_is_needed_is_one_line(tmp_path):
    entry = '{"input": "Yogi tea", "category": "Tea", "target_scores": {"Brand": {"Yogi": {"pid": [%s]}}}}' % ("7" * 5000)
    result = run_convert(write_lines(tmp_path / "in.jsonl", rows(TEA) + [entry]), tmp_path / "out")
    line = assert_one_line_error(result, "in.jsonl:2: field 'target_scores.Brand.Yogi'", "<number of 5000 characters>")
    assert len(line) < 400


def test_a_mave_id_of_5000_digits_names_its_product(tmp_path):
    line = '{"id": %s, "category": "Tea", "paragraphs": [{"text": "Acme tea"}], "attributes": []}' % ("1" * 5000)
    report = convert(write_lines(tmp_path / "in.jsonl", [line]), tmp_path / "out", "mave", dev_every=0)
    assert report.stats["sources"]["train"]["records"] == 1


@pytest.mark.parametrize("fmt", ["attribute-values", "mave", "specs"])
def test_deeply_nested_json_is_one_line_naming_the_line(tmp_path, fmt):
    source = write_lines(tmp_path / "in.jsonl", ["", "[" * 100_000])
    assert_one_line_error(run_convert(source, tmp_path / "out", fmt), "in.jsonl:2: malformed JSON: nested too deeply")
    assert not (tmp_path / "out").exists()


# 5: CR-only line endings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
def test_conll_with_any_line_ending(tmp_path, newline):
    lines = ["# vertical = Tea", "Acme\tB-Brand", "tea\tO", "12\tB-Size", "oz\tI-Size", "", "Yogi\tB-Brand", "tea\tO", "1\tB-Size", "lb\tI-Size", ""]
    source = tmp_path / "in.conll"
    source.write_bytes(newline.join(lines).encode())
    report = convert(source, tmp_path / "out", "conll", dev_every=0)
    tea = report.stats["verticals"]["Tea"]
    assert (tea["examples"]["train"], tea["spans"]) == (2, 4)
    assert [ents(d) for d in docs(tmp_path / "out" / "tea" / "train.spacy")] == [
        [("Acme", "Brand"), ("12 oz", "Size")], [("Yogi", "Brand"), ("1 lb", "Size")]]


def test_cr_only_jsonl_and_error_lines_count_cr_as_a_line_break(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(("\r".join(rows(TEA, TEA)) + "\r{broken\r").encode())
    assert_one_line_error(run_convert(source, tmp_path / "out"), "in.jsonl:3: malformed JSON")


# 6: duplicate keys ------------------------------------------------------------------------------------------------


def test_duplicate_attribute_keys_are_merged_and_counted(tmp_path):
    line = '{"input": "Acme green tea", "category": "Tea", "target_scores": {"Brand": {"Acme": 1}, "Brand": {"green": 1}}}'
    report = convert(write_lines(tmp_path / "in.jsonl", [line]), tmp_path / "out", "attribute-values", dev_every=0)
    (doc,) = docs(tmp_path / "out" / "tea" / "train.spacy")
    assert ents(doc) == [("Acme", "Brand"), ("green", "Brand")]
    source = report.stats["sources"]["train"]
    assert source["repairs"] == {"duplicate key merged": 1}
    assert source["repaired"] == [{"line": 1, "repair": "duplicate key merged", "detail": "'Brand'"}]
    assert "repaired: 1 duplicate key merged" in report.summary()[0]
    assert "duplicate key merged: 1" in (tmp_path / "out" / "stats.md").read_text()


def test_a_text_given_twice_with_different_values_is_one_line(tmp_path):
    line = '{"input": "Acme tea", "input": "Yogi tea", "category": "Tea", "target_scores": {}}'
    result = run_convert(write_lines(tmp_path / "in.jsonl", [line]), tmp_path / "out")
    assert_one_line_error(result, "in.jsonl:1: field 'input': expected a string, got duplicate keys with different values")


def test_csv_columns_of_the_same_name_are_merged_and_counted(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('product_name,description,category,product_specifications,category\n'
                      'Red shirt,cotton,Clothing,"{""Color""=>""Red""}",Clothing\n', encoding="utf-8")
    report = convert(source, tmp_path / "out", "specs", dev_every=0)
    assert report.stats["sources"]["train"]["repairs"] == {"duplicate key merged": 1}
    assert report.stats["verticals"]["Clothing"]["spans"] == 1


# 10: tracebacks --------------------------------------------------------------------------------------------------


def test_a_text_over_max_length_is_skipped_and_counted(tmp_path):
    long = product("Acme " * 200_001, "Tea", Brand={"Acme": 1})
    report = convert(write_lines(tmp_path / "in.jsonl", rows(TEA, long)), tmp_path / "out", "attribute-values", dev_every=0)
    reason = "text over 1,000,000 characters (spaCy's max_length)"
    assert report.stats["sources"]["train"]["skipped"] == {reason: 1}
    assert report.stats["verticals"]["Tea"]["skipped"] == {"train": {reason: 1}}
    assert report.stats["verticals"]["Tea"]["examples"]["train"] == 1


@pytest.mark.parametrize("fmt", ["attribute-values", "mave"])
def test_lone_surrogates_become_u_fffd_and_are_counted(tmp_path, fmt):
    if fmt == "mave":
        line = r'{"id": "a", "category": "Tea", "paragraphs": [{"text": "Acme \ud800 tea"}], "attributes": [{"key": "Brand", "evidences": [{"value": "Acme", "pid": 0, "begin": 0, "end": 4}]}]}'
    else:
        line = r'{"input": "Acme \ud800 tea", "category": "Tea", "target_scores": {"Br\udc00nd": {"Acme": 1}}}'
    report = convert(write_lines(tmp_path / "in.jsonl", [line]), tmp_path / "out", fmt, dev_every=0)
    (doc,) = docs(tmp_path / "out" / "tea" / "train.spacy")
    assert doc.text == "Acme \ufffd tea" and ents(doc)[0][0] == "Acme"
    assert report.stats["sources"]["train"]["repairs"]["lone surrogate replaced by U+FFFD"] >= 1


def test_a_300_character_vertical_gets_a_short_stable_folder(tmp_path):
    name = "Tea " * 75
    report = convert(write_lines(tmp_path / "in.jsonl", rows(product("Acme tea", name, Brand={"Acme": 1}))), tmp_path / "out", "attribute-values")
    folder = report.stats["verticals"][name.strip()]["folder"]
    assert len(folder) == 64 and folder == slugify(name.strip()) and (tmp_path / "out" / folder / "train.spacy").is_file()


def test_an_output_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    assert_one_line_error(run_convert(write_lines(tmp_path / "in.jsonl", rows(TEA)), tmp_path / "out"), "is a file, expected the output folder")
    assert_one_line_error(run_convert(tmp_path / "in.jsonl", tmp_path / "out" / "sub"), "out: is a file, not a folder")


def test_a_read_only_output_dir_is_one_line_before_reading(tmp_path, monkeypatch):
    import spacy_mtlave.convert as convert_module

    # root can write anywhere: simulate the permission check's answer
    monkeypatch.setattr(convert_module, "os", SimpleNamespace(access=lambda path, mode: False, W_OK=os.W_OK, X_OK=os.X_OK))
    result = run_convert(write_lines(tmp_path / "in.jsonl", ["{not read"]), tmp_path / "out")
    assert_one_line_error(result, "folder is not writable")


def test_a_failed_write_changes_nothing(tmp_path, monkeypatch):
    source = write_lines(tmp_path / "in.jsonl", rows(TEA))
    out = tmp_path / "out"
    convert(source, out, "attribute-values", dev_every=0)
    before = snapshot(out)
    real = outputs._open_new

    def refuse_stats(path, *args):
        if ".stats.json." in path.name:
            raise PermissionError(13, "Permission denied")
        return real(path, *args)

    monkeypatch.setattr(outputs, "_open_new", refuse_stats)
    write_lines(source, rows(TEA, product("Yogi tea", "Tea", Brand={"Yogi": 1})))
    assert_one_line_error(run_convert(source, out), "stats.json: cannot write (Permission denied)")
    assert snapshot(out) == before


def test_a_stats_file_that_cannot_be_replaced_changes_nothing(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", rows(TEA))
    out = tmp_path / "out"
    convert(source, out, "attribute-values", dev_every=0)
    (out / "stats.md").unlink()
    (out / "stats.md").mkdir()  # cannot be replaced by a file
    before = snapshot(out)
    write_lines(source, rows(TEA, TEA))
    assert_one_line_error(run_convert(source, out), "stats.md: is a folder")
    assert snapshot(out) == before and (out / "stats.md").is_dir()


@pytest.mark.parametrize("content,message", [
    ('{"verticals": {"Tea": {}}}', "not a stats.json written by convert (KeyError: 'folder')"),
    ('{"verticals": {"Tea": {"folder": "../../elsewhere", "splits": {}, "skipped": {}}}}', "a vertical folder that convert does not write"),
    ('{"verticals": [1]}', "not a stats.json written by convert"),
    ("{broken", "cannot merge into malformed statistics"),
])
def test_a_foreign_or_malformed_stats_json_changes_nothing(tmp_path, content, message):
    source = write_lines(tmp_path / "in.jsonl", rows(TEA))
    out = tmp_path / "out"
    convert(source, out, "attribute-values", dev_every=0)
    (out / "stats.json").write_text(content)
    before = snapshot(out)
    write_lines(source, rows(TEA, TEA))
    assert_one_line_error(run_convert(source, out), "stats.json", message)
    assert snapshot(out) == before


# 11: specs value shapes -------------------------------------------------------------------------------------------


def test_specs_list_values_and_value_objects_keep_their_key(tmp_path):
    source = tmp_path / "in.jsonl"
    write_lines(source, [
        json.dumps({"product_name": "Red and Blue shirt", "description": "", "category": "Clothing", "product_specifications": {"Color": ["Red", "Blue"]}}),
        json.dumps({"product_name": "Red shirt", "description": "", "category": "Clothing", "product_specifications": {"Color": {"value": "Red"}}}),
        json.dumps({"product_name": "Red shirt", "description": "", "category": "Clothing", "product_specifications": {"Color": {"shade": "Red"}}}),
    ])
    report = convert(source, tmp_path / "out", "specs", dev_every=0)
    first, second, third = docs(tmp_path / "out" / "clothing" / "train.spacy")
    assert ents(first) == [("Red", "Color"), ("Blue", "Color")]
    assert ents(second) == [("Red", "Color")]
    assert ents(third) == [] and report.stats["sources"]["train"]["labels"]["Color"]["entry_skipped"] == 1


# 12: re-conversion, skipped records, CJK names --------------------------------------------------------------------


def test_reconverting_removes_the_group_docbins_of_verticals_no_longer_there(tmp_path):
    out = tmp_path / "out"
    source = write_lines(tmp_path / "in.jsonl", rows(TEA, product("Acme shoe", "Shoes", Brand={"Acme": 1})))
    convert(source, out, "attribute-values")
    convert(write_lines(tmp_path / "test.jsonl", rows(product("Acme shoe", "Shoes", Brand={"Acme": 1}))), out, "attribute-values", split="test")
    result = run_convert(write_lines(source, rows(TEA)), out)
    assert result.exit_code == 0, result.output
    assert "removed 2 DocBins" in result.stdout
    assert sorted(p.name for p in (out / "shoes").iterdir()) == ["test.spacy"]  # the test group is not touched
    stats = json.loads((out / "stats.json").read_text())
    assert stats["verticals"]["Shoes"]["examples"] == {"train": 0, "dev": 0, "test": 1}
    convert(write_lines(tmp_path / "test.jsonl", rows(TEA)), out, "attribute-values", split="test")
    assert not (out / "shoes").exists() and "Shoes" not in json.loads((out / "stats.json").read_text())["verticals"]


def test_records_skipped_for_an_empty_vertical_are_in_the_summary(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", rows(TEA, product("Acme", "", Brand={"Acme": 1}), product("Acme", None, Brand={"Acme": 1})))
    result = run_convert(source, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "3 records, 2 skipped (empty vertical: 2)" in result.stdout


def test_verticals_named_in_cjk_or_emoji_get_stable_distinct_folders(tmp_path):
    names = ["咖啡", "茶", "☕🍵"]
    report = convert(write_lines(tmp_path / "in.jsonl", rows(*(product("Acme tea", n, Brand={"Acme": 1}) for n in names))), tmp_path / "out", "attribute-values")
    folders = [report.stats["verticals"][n]["folder"] for n in names]
    assert len(set(folders)) == 3 and all(f.startswith("vertical_") and f == slugify(n) for f, n in zip(folders, names))
    assert all((tmp_path / "out" / f / "train.spacy").is_file() for f in folders)
