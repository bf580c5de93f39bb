"""``spacy_mtlave.product_tokenizer.v1`` (issue 15): what it splits, what it keeps whole, that it is usable from a
config and survives saving, and that ``convert --tokenizer product`` places values the default tokens cannot hold."""
import json

import pytest
import spacy
from spacy.tokens import DocBin

from ..helpers import assert_one_line_error, invoke


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_mtlave.product_tokenizer.v1"}}})


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("White,11", ["White", ",", "11"]),
        ("Patent,14", ["Patent", ",", "14"]),
        ("Black/ White", ["Black", "/", "White"]),
        ("Shoe-49-Black/Moonlight", ["Shoe", "-", "49", "-", "Black", "/", "Moonlight"]),
        ("(180Tablets)", ["(", "180", "Tablets", ")"]),
        ("10pk", ["10", "pk"]),
        ("Vitamin C+Zinc", ["Vitamin", "C", "+", "Zinc"]),
    ],
)
def test_splits_glued_values(nlp, text, tokens):
    assert [t.text for t in nlp(text)] == tokens
    assert spacy.blank("en")(text).text == nlp(text).text


@pytest.mark.parametrize("text", ["1,000", "B12", "X100", "1/2", "U.S.A."])
def test_keeps_values_whole(nlp, text):
    assert [t.text for t in nlp(text)] == [text]


def test_a_value_over_several_tokens_keeps_its_text(nlp):
    doc = nlp("Pearl Izumi Men's X-Alp Low Shoe-49-Black/Moonlight")
    span = doc.char_span(doc.text.index("Black/Moonlight"), len(doc.text))
    assert span is not None and span.text == "Black/Moonlight"
    assert doc.char_span(doc.text.index("49"), doc.text.index("49") + 2).text == "49"  # not placeable on spaCy's tokens
    blank = spacy.blank("en")(doc.text)
    assert blank.char_span(doc.text.index("49"), doc.text.index("49") + 2) is None


def test_rules_survive_saving_and_loading(nlp, tmp_path):
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert [t.text for t in loaded("White,11 (180Tablets)")] == ["White", ",", "11", "(", "180", "Tablets", ")"]


def test_convert_with_the_product_tokenizer_places_glued_values(tmp_path):
    record = {"input": "Pearl Izumi Men's Shoe-49-Black/Moonlight", "category": "Shoes",
              "target_scores": {"Brand": {"Pearl Izumi": 1}, "Size": {"49": 1}, "Color": {"Black/Moonlight": 1}}}
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(record) + "\n")
    spans = {}
    for tok in ("default", "product"):
        result = invoke("convert", path, tmp_path / tok, "--format", "attribute-values", "--split", "test", "--tokenizer", tok)
        assert result.exit_code == 0, result.output
        doc = next(DocBin().from_disk(tmp_path / tok / "shoes" / "test.spacy").get_docs(spacy.blank("en").vocab))
        spans[tok] = {(e.text, e.label_) for e in doc.ents}
    assert ("49", "Size") in spans["product"] and ("49", "Size") not in spans["default"]
    assert ("Black/Moonlight", "Color") in spans["product"]
    assert_one_line_error(invoke("convert", path, tmp_path / "x", "--format", "attribute-values", "--tokenizer", "bpe"), "unknown tokenizer 'bpe'")
