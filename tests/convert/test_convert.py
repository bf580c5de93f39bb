import csv
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.convert import ConvertError, convert, reference_nlp


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def load(path: Path):
    return list(DocBin().from_disk(path).get_docs(reference_nlp().vocab))


def ents(doc):
    return [(span.text, span.label_) for span in doc.ents]


def product(title, category, **scores):
    return {"input": title, "category": category, "target_scores": scores}


def problems(stats, vertical, split="train"):
    return stats["verticals"][vertical]["splits"][split]["problems"]


# attribute-values -------------------------------------------------------------------------------------------------


def test_attribute_values_writes_vertical_folders_with_gold_spans(tmp_path):
    rows = [
        product("Ellie Shoes Women's 8400, Red Patent", "Shoes", Brand={"Ellie Shoes": 1}, Color={"Red Patent": 1}),
        product("Lipton Green Tea 20 Count", "Tea", Brand={"Lipton": 1}, **{"Net content": {"20 Count": 1}}),
    ]
    report = convert(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out", "attribute-values", dev_every=0)
    (shoe,) = load(tmp_path / "out" / "shoes" / "train.spacy")
    (tea,) = load(tmp_path / "out" / "tea" / "train.spacy")
    assert ents(shoe) == [("Ellie Shoes", "Brand"), ("Red Patent", "Color")]
    assert ents(tea) == [("Lipton", "Brand"), ("20 Count", "Net content")]
    assert (shoe._.vertical, tea._.vertical) == ("Shoes", "Tea")
    assert [t.ent_iob_ for t in tea] == ["B", "O", "O", "B", "I"]
    assert not (tmp_path / "out" / "tea" / "dev.spacy").exists()
    assert report.stats["verticals"]["Tea"]["labels"] == ["Brand", "Net content"]


def test_longer_values_first_then_first_free_occurrence(tmp_path):
    rows = [product("Red Shoes Red", "Shoes", Color={"Red": 1}, Style={"Red Shoes": 1})]
    convert(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out", "attribute-values", dev_every=0)
    (doc,) = load(tmp_path / "out" / "shoes" / "train.spacy")
    assert [(s.start_char, s.text, s.label_) for s in doc.ents] == [(0, "Red Shoes", "Style"), (10, "Red", "Color")]


def test_expanded_span_overlap_is_dropped_and_counted(tmp_path):
    rows = [product("Crocs Black,8 M US", "Shoes", Brand={"Crocs": 1}, Color={"Black": 1}, Size={"8 M US": 1})]
    report = convert(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out", "attribute-values", dev_every=0)
    (doc,) = load(tmp_path / "out" / "shoes" / "train.spacy")
    assert ents(doc) == [("Crocs", "Brand"), ("Black,8 M US", "Size")]
    shoes = report.stats["verticals"]["Shoes"]
    assert (shoes["overlaps_dropped"], shoes["values_expanded"], shoes["values_not_placed"]) == (1, 1, 0)
    statuses = {(p["label"], p["status"]) for p in problems(report.stats, "Shoes")}
    assert statuses == {("Size", "expanded"), ("Color", "overlap_dropped")}


def test_absent_and_missing_values_are_reported(tmp_path):
    rows = [
        product("Acme Tea", "Tea", Brand={"Acme": 1}, Flavor={"n/a": 1}),
        product("Acme Tea", "Tea", Brand={"Zeta": 1}),
    ]
    report = convert(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out", "attribute-values", dev_every=0)
    tea = report.stats["verticals"]["Tea"]
    assert tea["values_not_placed"] == 1
    assert problems(report.stats, "Tea") == [
        {"line": 2, "label": "Brand", "value": "Zeta", "status": "not_placed", "detail": "not found in the text"}
    ]
    assert tea["labels"] == ["Brand"]
    assert tea["splits"]["train"]["examples_without_spans"] == 1


def test_text_fields_join_with_newline_and_pid_restricts_the_field(tmp_path):
    rows = [
        {
            "title": "Acme Green Tea",
            "description": "Green tea from Acme",
            "category": "Tea",
            "target_scores": {
                "Brand": {"Acme": {"pid": [1], "score": 1}},
                "Flavor": {"Green Tea": 1},
                "Origin": {"from Acme": {"pid": [0], "score": 1}},
            },
        }
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    report = convert(path, tmp_path / "out", "attribute-values", dev_every=0, text_fields=["title", "description"])
    (doc,) = load(tmp_path / "out" / "tea" / "train.spacy")
    assert doc.text == "Acme Green Tea\nGreen tea from Acme"
    assert [(s.start_char, s.text, s.label_) for s in doc.ents] == [(5, "Green Tea", "Flavor"), (30, "Acme", "Brand")]
    (problem,) = problems(report.stats, "Tea")
    assert (problem["label"], problem["status"]) == ("Origin", "not_placed")
    assert "pid" in problem["detail"]


WORDS = st.sampled_from(["red", "Red", "tea", "green", "Acme", "pack", "of", "2", "oz", "blue"])


@st.composite
def titles_with_values(draw):
    words = draw(st.lists(WORDS, min_size=1, max_size=12))
    values = {}
    for i in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, len(words) - 1))
        end = draw(st.integers(start + 1, min(len(words), start + 3)))
        values.setdefault(f"attr{i % 3}", {})[" ".join(words[start:end])] = 1
    return " ".join(words), values


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(titles_with_values(), min_size=1, max_size=6))
def test_placed_spans_round_trip_and_output_is_byte_identical(products):
    rows = [{"input": title, "category": "Tea", "target_scores": values} for title, values in products]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write_jsonl(tmp / "in.jsonl", rows)
        first = convert(path, tmp / "a", "attribute-values", dev_every=3)
        convert(path, tmp / "b", "attribute-values", dev_every=3)
        docs = load(tmp / "a" / "tea" / "train.spacy") + load(tmp / "a" / "tea" / "dev.spacy")
        gold = {(label, value) for _, values in products for label, vs in values.items() for value in vs}
        placed = 0
        for doc in docs:
            for span in doc.ents:
                assert (span.label_, doc.text[span.start_char : span.end_char]) in gold
                placed += 1
        values = first.stats["verticals"]["Tea"]["splits"]
        counts = {status: sum(split["values"][status] for split in values.values()) for status in ("placed", "expanded")}
        assert counts == {"placed": placed, "expanded": 0}
        assert sum(len(v) for _, vs in products for v in vs.values()) == sum(
            sum(split["values"].values()) for split in values.values()
        )
        for name in ("tea/train.spacy", "tea/dev.spacy", "stats.json", "stats.md"):
            assert (tmp / "a" / name).read_bytes() == (tmp / "b" / name).read_bytes()


# splits and statistics --------------------------------------------------------------------------------------------


def test_dev_split_every_nth_within_each_vertical(tmp_path):
    rows = []
    for i in range(25):
        rows.append(product(f"Acme tea {i}", "Tea", Brand={"Acme": 1}))
        rows.append(product(f"Zeta shoe {i}", "Shoes", Brand={"Zeta": 1}))
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    report = convert(path, tmp_path / "out", "attribute-values", dev_every=10)
    dev = [doc.text for doc in load(tmp_path / "out" / "tea" / "dev.spacy")]
    train = [doc.text for doc in load(tmp_path / "out" / "tea" / "train.spacy")]
    assert dev == ["Acme tea 9", "Acme tea 19"]
    assert len(train) == 23 and "Acme tea 10" in train
    assert report.stats["verticals"]["Shoes"]["examples"] == {"train": 23, "dev": 2, "test": 0}
    convert(path, tmp_path / "out", "attribute-values", dev_every=0)
    assert not (tmp_path / "out" / "tea" / "dev.spacy").exists()


def test_test_split_merges_into_existing_statistics(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [product(f"Acme tea {i}", "Tea", Brand={"Acme": 1}) for i in range(12)])
    test = write_jsonl(tmp_path / "test.jsonl", [product("Zeta tea", "Tea", Brand={"Zeta": 1}, Size={"1 kg": 1})])
    out = tmp_path / "out"
    convert(train, out, "attribute-values")
    convert(test, out, "attribute-values", split="test")
    stats = json.loads((out / "stats.json").read_text())
    tea = stats["verticals"]["Tea"]
    assert tea["examples"] == {"train": 11, "dev": 1, "test": 1}
    assert tea["examples_per_label"] == {"max": 12, "min": 12}
    assert tea["values_not_placed"] == 1 and set(stats["sources"]) == {"train", "test"}
    convert(train, out, "attribute-values", dev_every=4)
    assert json.loads((out / "stats.json").read_text())["verticals"]["Tea"]["examples"] == {"train": 9, "dev": 3, "test": 1}
    assert "| Tea | tea | 1 | 9, 3, 1 | 12, 12 |" in (out / "stats.md").read_text()
    assert (out / "tea" / "test.spacy").exists()


# mave ------------------------------------------------------------------------------------------------------------


def mave_line(pid, paragraphs, attributes, category="Shoes"):
    return {"id": pid, "category": category, "paragraphs": [{"text": t, "source": "title"} for t in paragraphs],
            "attributes": attributes}


def evidence(key, value, pid, begin):
    return {"key": key, "evidences": [{"value": value, "pid": pid, "begin": begin, "end": begin + len(value)}]}


def test_mave_merges_lines_shifts_offsets_and_resolves_overlaps(tmp_path):
    paragraphs = ["Nike Air Zoom running shoes", "Color: dark blue"]
    rows = [
        mave_line("p1", paragraphs, [evidence("Brand", "Nike", 0, 0), evidence("Model", "Air Zoom", 0, 5)]),
        mave_line("p2", ["Other shoe"], [{"key": "Brand", "evidences": []}]),
        mave_line("p1", paragraphs, [evidence("Color", "dark blue", 1, 7), evidence("Shade", "blue", 1, 12)]),
        mave_line("p1", paragraphs, [evidence("Line", "Nike Air", 0, 0)]),
    ]
    report = convert(write_jsonl(tmp_path / "mave.jsonl", rows), tmp_path / "out", "mave", dev_every=0)
    first, second = load(tmp_path / "out" / "shoes" / "train.spacy")
    assert first.text == "Nike Air Zoom running shoes\nColor: dark blue" and second.text == "Other shoe"
    # "Nike Air" and "Air Zoom" tie on length: the earlier start wins; "Nike" and "blue" lose to longer spans
    assert ents(first) == [("Nike Air", "Line"), ("dark blue", "Color")]
    assert report.stats["verticals"]["Shoes"]["overlaps_dropped"] == 3
    assert {p["value"] for p in problems(report.stats, "Shoes")} == {"Nike", "Air Zoom", "blue"}


@pytest.mark.parametrize(
    "evidence_fields,message",
    [
        ({"value": "Nike", "pid": 0, "begin": 0, "end": 40}, "out of range"),
        ({"value": "Nike", "pid": 0, "begin": 1, "end": 5}, "not the value 'Nike'"),
        ({"value": "Nike", "pid": 3, "begin": 0, "end": 4}, "pid 3 out of range"),
        ({"value": "Nike", "pid": 0, "begin": 0}, "missing required field"),
    ],
)
def test_mave_offset_errors_name_line_and_field(tmp_path, evidence_fields, message):
    rows = [mave_line("p0", ["Puma shoe"], []),
            mave_line("p1", ["Nike shoe"], [{"key": "Brand", "evidences": [evidence_fields]}])]
    path = write_jsonl(tmp_path / "mave.jsonl", rows)
    with pytest.raises(ConvertError) as err:
        convert(path, tmp_path / "out", "mave")
    assert str(err.value).startswith(f"{path}:2: field 'attributes[0].evidences[0]")
    assert message in str(err.value)


def test_mave_lines_with_the_same_id_must_agree(tmp_path):
    rows = [mave_line("p1", ["Nike shoe"], []), mave_line("p1", ["Nike shoes"], [])]
    with pytest.raises(ConvertError, match=r"mave.jsonl:2: field 'paragraphs': differs from line 1"):
        convert(write_jsonl(tmp_path / "mave.jsonl", rows), tmp_path / "out", "mave")


# conll -----------------------------------------------------------------------------------------------------------


def test_conll_bio_biluo_underscore_and_vertical_comments(tmp_path):
    text = (
        "# vertical = Laundry Detergent\n"
        "Tide\tB-Brand\nPods\tO\nSpring\tB_Scent\nMeadow\tI_Scent\n\n"
        "Gain\tU-Brand\nOriginal\tB-Scent\nfresh\tL-Scent\n42\tU-Net content\n\n"
        "# vertical = Tea\n"
        "Green\tI-Flavor\ntea\tO\n#\tO\n"
    )
    (tmp_path / "in.conll").write_text(text, encoding="utf-8")
    report = convert(tmp_path / "in.conll", tmp_path / "out", "conll", dev_every=0)
    first, second = load(tmp_path / "out" / "laundry_detergent" / "train.spacy")
    assert ents(first) == [("Tide", "Brand"), ("Spring Meadow", "Scent")]
    assert ents(second) == [("Gain", "Brand"), ("Original fresh", "Scent"), ("42", "Net content")]
    (tea,) = load(tmp_path / "out" / "tea" / "train.spacy")
    assert tea.text == "Green tea #" and ents(tea) == [("Green", "Flavor")] and tea._.vertical == "Tea"
    assert report.stats["verticals"]["Laundry Detergent"]["spans"] == 5


def test_conll_vertical_option_overrides_comments(tmp_path):
    (tmp_path / "in.conll").write_text("# vertical = Tea\nAcme\tB-Brand\n", encoding="utf-8")
    convert(tmp_path / "in.conll", tmp_path / "out", "conll", vertical="Coffee", dev_every=0)
    (doc,) = load(tmp_path / "out" / "coffee" / "train.spacy")
    assert doc._.vertical == "Coffee"


# specs -----------------------------------------------------------------------------------------------------------

SPEC = '{"product_specification"=>[%s]}'


def spec(*entries):
    return SPEC % ", ".join(
        '{"value"=>"%s"}' % v if k is None else '{"key"=>"%s", "value"=>"%s"}' % (k, v) for k, v in entries
    )


def write_flipkart(path: Path, rows) -> Path:
    header = ["uniq_id", "product_name", "product_category_tree", "description", "product_specifications"]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_specs_flipkart_like_csv(tmp_path):
    rows = [
        ["a1", "Alisha Solid Women's Cycling Shorts", '["Clothing >> Women\'s Clothing >> Shorts"]',
         "Cotton lycra shorts for women's daily wear, redmi free",
         spec(("Fabric", "Cotton  Lycra"), ("Ideal For", "Women's"), (None, "3 shorts"), ("Color", "Red"),
              ("Type", "Cycling Shorts"), ("Shorts", "shorts"), ("Size", "NA"))],
        ["", "", "", "", ""],
        ["a2", "FabHomeDecor Sofa Bed", '["Furniture >> Living Room"]', "A sofa bed", spec(("ideal  for", "Sofa"))],
        ["a3", "Sandal", '["Footwear >> Women"]', "A sandal", ""],
        ["a4", "Watch", '["Watches"]', "A watch", spec(("Ideal For", "Watch"))],
    ]
    path = write_flipkart(tmp_path / "flip.csv", rows)
    report = convert(path, tmp_path / "out", "specs", dev_every=0, vertical_field="product_category_tree",
                     category_depth=2, text_fields=["product_name", "description"])
    (doc,) = load(tmp_path / "out" / "clothing_women_s_clothing" / "train.spacy")
    assert doc._.vertical == "Clothing >> Women's Clothing"
    assert ents(doc) == [
        ("Women's", "Ideal For"), ("Cycling Shorts", "Type"), ("Cotton lycra", "Fabric"),
        ("shorts", "Shorts"), ("women's", "Ideal For"),
    ]
    (sofa,) = load(tmp_path / "out" / "furniture_living_room" / "train.spacy")
    assert ents(sofa) == [("Sofa", "Ideal For"), ("sofa", "Ideal For")]
    source = report.stats["sources"]["train"]
    assert source["skipped"] == {"category path shorter than --category-depth 2": 1, "empty row": 1,
                                 "empty specification": 1}
    assert source["labels"]["Color"]["not_placed"] == 1 and source["labels"]["Size"]["entry_skipped"] == 1
    assert source["labels"]["Ideal For"]["placed"] == 2
    assert source["spellings"]["Ideal For"] == {"Ideal For": 1, "ideal for": 1}
    assert source["values"]["entry_skipped"] == 2
    assert report.stats["verticals"]["Footwear >> Women"]["skipped"] == {"train": {"empty specification": 1}}


# command line and structural errors ------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(app, ["convert", *map(str, args)])


def test_cli_converts_and_prints_a_summary(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [product("Acme tea", "Tea", Brand={"Acme": 1})])
    result = run(path, tmp_path / "out", "--format", "attribute-values", "--dev-every", "0")
    assert result.exit_code == 0, result.output
    assert "Tea -> tea/: train 1; 1 labels" in result.stdout
    assert (tmp_path / "out" / "stats.md").exists()


GOOD = json.dumps(product("Acme tea", "Tea", Brand={"Acme": 1}))


@pytest.mark.parametrize(
    "content,fmt,expected",
    [
        (f"{GOOD}\n{{'input': 1}}\n".encode(), "attribute-values", ":2: malformed JSON"),
        (f'{GOOD}\n{{"input": "x", "category": "Tea"}}\n'.encode(), "attribute-values", ":2: field 'target_scores'"),
        (f'{GOOD}\n{{"input": 3, "category": "Tea", "target_scores": {{}}}}\n'.encode(), "attribute-values",
         ":2: field 'input'"),
        (b"", "attribute-values", ":1: empty file"),
        (f"{GOOD}\n{GOOD}\n".encode() + b'{"input": "caf\xe9"}\n', "attribute-values", ":3: not UTF-8"),
        (b"# vertical = Tea\nAcme\tB-Brand\ntea\tX-Brand\n", "conll", ":3: field 'tag': invalid tag 'X-Brand'"),
        (b"Acme\tB-Brand\n", "conll", ":1: no vertical"),
        (b"uniq_id,product_name,description,category,product_specifications\n1,a,b,Tea,{\"x\"=>\n",
         "specs", ":2: field 'product_specifications': malformed specification"),
        (GOOD.encode(), "xml", "field '--format': unknown format 'xml'"),
    ],
)
def test_structural_errors_exit_2_with_one_line(tmp_path, content, fmt, expected):
    path = tmp_path / ("in.csv" if fmt == "specs" else "in.txt")
    path.write_bytes(content)
    result = run(path, tmp_path / "out", "--format", fmt)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and expected in result.stderr
    if fmt != "xml":
        assert result.stderr.startswith(f"error: {path}:")
