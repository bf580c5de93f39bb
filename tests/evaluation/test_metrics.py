import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab

from spacy_mtlave.bio import bio_from_spans
from spacy_mtlave.evaluation.metrics import (
    count_tags,
    doc_tags,
    macro_f1,
    score_examples,
    span_scores,
    tag_scores,
    train_tag_counts,
)

VOCAB = Vocab()


def make_doc(words, spaces=None, spans=()):
    doc = Doc(VOCAB, words=words, spaces=spaces)
    doc.ents = [Span(doc, start, end, label=label) for start, end, label in spans]
    return doc


def test_never_predicted_tag_has_precision_zero_in_the_mean():
    scores = tag_scores([["B-a", "I-a", "B-b"]], [["B-a", "I-a", "O"]])
    assert scores["per_tag"]["B-b"]["p"] == 0.0
    assert scores["n_tags"] == 3
    assert scores["macro_p"] == pytest.approx(2 / 3)
    assert scores["macro_r"] == pytest.approx(2 / 3)


def test_predicted_only_tag_is_excluded_and_reported():
    gold, pred = [["B-a", "O", "O"]], [["B-a", "B-z", "B-y"]]
    scores = tag_scores(gold, pred)
    assert scores["macro_p"] == 1.0 and scores["macro_r"] == 1.0
    assert scores["n_tags"] == 1
    assert scores["unknown_tags"] == ["B-y", "B-z"]
    assert scores["per_tag"]["B-z"]["fp"] == 1 and scores["per_tag"]["B-z"]["support"] == 0
    assert scores["accuracy"] == pytest.approx(1 / 3)
    # a tag seen in training is not unknown, and still not in the macro average
    with_train = tag_scores(gold, pred, train_counts={"B-z": 4})
    assert with_train["unknown_tags"] == ["B-y"]
    assert with_train["macro_p"] == 1.0


def test_all_outside_gold():
    scores = tag_scores([["O", "O"], ["O"]], [["O", "O"], ["O"]])
    assert scores["n_tags"] == 0
    assert (scores["macro_p"], scores["macro_r"], scores["macro_f1"]) == (0.0, 0.0, 0.0)
    assert scores["accuracy"] == 1.0
    wrong = tag_scores([["O", "O"]], [["B-a", "O"]])
    assert wrong["macro_f1"] == 0.0 and wrong["accuracy"] == 0.5 and wrong["unknown_tags"] == ["B-a"]
    empty = tag_scores([], [])
    assert empty["accuracy"] == 0.0 and empty["n_tokens"] == 0


def test_vertical_with_one_tag():
    gold = [["B-Brand", "O", "O"], ["O", "B-Brand"]]
    pred = [["B-Brand", "O", "O"], ["O", "O"]]
    scores = tag_scores(gold, pred)
    assert scores["n_tags"] == 1
    assert scores["macro_p"] == 1.0 and scores["macro_r"] == 0.5
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(4 / 5)


def test_perfect_prediction():
    tags = [["B-Net content", "I-Net content", "O", "B-Brand"], ["B-Brand", "I-Brand"]]
    scores = tag_scores(tags, tags)
    assert scores["macro_p"] == scores["macro_r"] == scores["macro_f1"] == scores["accuracy"] == 1.0
    assert scores["n_tags"] == 4


def test_paper_arithmetic():
    assert round(macro_f1(0.9128, 0.8485), 4) == 0.8795
    assert macro_f1(0.0, 0.0) == 0.0


def test_macro_f1_is_harmonic_mean_of_macro_p_and_r_not_mean_of_f1s():
    # a: p=1, r=1/2; b: p=1/2, r=1 -> per-tag F1 2/3 each, but macro-P = macro-R = 3/4
    scores = tag_scores([["B-a", "B-a", "B-b", "O"]], [["B-a", "O", "B-b", "B-b"]])
    assert scores["per_tag"]["B-a"]["f"] == pytest.approx(2 / 3)
    assert scores["per_tag"]["B-b"]["f"] == pytest.approx(2 / 3)
    assert scores["macro_f1"] == pytest.approx(0.75)


def test_rare_tag_f1_selection():
    gold = [["B-a", "I-a", "B-b", "B-c"]]
    pred = [["B-a", "I-a", "B-b", "O"]]
    train = {"B-a": 100, "I-a": 16, "B-b": 15}  # B-c unseen in training: count 0, rare
    scores = tag_scores(gold, pred, train_counts=train)
    assert scores["rare_tag_f1"] == pytest.approx((1.0 + 0.0) / 2)  # B-b and B-c
    assert scores["per_tag"]["B-c"]["train_count"] == 0
    assert tag_scores(gold, pred, train_counts=train, rare_max=16)["rare_tag_f1"] == pytest.approx(2 / 3)
    assert tag_scores(gold, pred)["rare_tag_f1"] is None
    assert "train_count" not in tag_scores(gold, pred)["per_tag"]["B-a"]
    common = {"B-a": 50, "I-a": 50, "B-b": 50, "B-c": 50}
    assert tag_scores(gold, pred, train_counts=common)["rare_tag_f1"] is None


def test_length_mismatch_names_the_doc():
    with pytest.raises(ValueError, match="doc 1"):
        count_tags([["O"], ["O", "B-a"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 gold docs but 1"):
        tag_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="invalid BIO tag 'X-a'"):
        tag_scores([["O"]], [["X-a"]])


def test_bio_from_spans_and_doc_tags():
    assert bio_from_spans(5, [(3, 5, "Net content"), (0, 1, "Brand")]) == [
        "B-Brand", "O", "O", "B-Net content", "I-Net content"
    ]
    with pytest.raises(ValueError, match="overlaps"):
        bio_from_spans(4, [(0, 2, "a"), (1, 3, "b")])
    with pytest.raises(ValueError, match="invalid span"):
        bio_from_spans(2, [(1, 3, "a")])
    doc = make_doc(["Folgers", "Black", "Silk", "coffee"], spans=[(0, 1, "Brand"), (1, 3, "Roast")])
    assert doc_tags(doc) == ["B-Brand", "B-Roast", "I-Roast", "O"]
    other = make_doc(["Lipton", "tea"], spans=[(0, 1, "Brand")])
    assert train_tag_counts([doc, other]) == {"B-Brand": 2, "B-Roast": 1, "I-Roast": 1}


def random_example(rng: random.Random) -> Example:
    n = rng.randint(1, 12)
    words = [rng.choice(["oz", "Black", "Tea", "12", "pack"]) for _ in range(n)]

    def spans():
        out, i = [], 0
        while i < n:
            if rng.random() < 0.4:
                end = rng.randint(i + 1, min(n, i + 3))
                out.append((i, end, rng.choice(["Brand", "Size", "Net content"])))
                i = end
            else:
                i += 1
        return out

    gold = spans()
    pred = [s for s in gold if rng.random() < 0.6] + [s for s in spans() if rng.random() < 0.5]
    pred = [s for k, s in enumerate(pred) if not any(s[0] < t[1] and t[0] < s[1] for t in pred[:k])]
    return Example(make_doc(words, spans=pred), make_doc(words, spans=gold))


@pytest.mark.parametrize("seed", range(5))
def test_span_scores_match_spacy_scorer(seed):
    rng = random.Random(seed)
    examples = [random_example(rng) for _ in range(20)]
    expected = Scorer.score_spans(examples, "ents")
    gold = [[(e.start, e.end, e.label_) for e in eg.reference.ents] for eg in examples]
    pred = [[(e.start, e.end, e.label_) for e in eg.predicted.ents] for eg in examples]
    for got in (span_scores(gold, pred), score_examples(examples)):
        for key in ("ents_p", "ents_r", "ents_f"):
            assert got[key] == pytest.approx(expected[key])
        assert got["ents_per_type"].keys() == expected["ents_per_type"].keys()
        for label, prf in expected["ents_per_type"].items():
            assert got["ents_per_type"][label] == pytest.approx(prf)


def test_span_scores_without_any_span_is_none_like_spacy():
    examples = [Example(make_doc(["a", "b"]), make_doc(["a", "b"]))]
    assert Scorer.score_spans(examples, "ents")["ents_f"] is None
    assert span_scores([[]], [[]]) == {"ents_p": None, "ents_r": None, "ents_f": None, "ents_per_type": None}
    assert span_scores([[(0, 1, "a")]], [[]])["ents_p"] == 0.0


def test_score_examples_projects_other_tokenisation():
    # reference (blank "en") keeps "Black,8" as one token; the system split it
    reference = make_doc(["Folgers", "Black,8", "oz"], [True, True, False], [(0, 1, "Brand"), (2, 3, "Unit")])
    predicted = make_doc(
        ["Folgers", "Black", ",", "8", "oz"],
        [True, False, False, True, False],
        [(0, 1, "Brand"), (1, 2, "Color"), (3, 5, "Size")],  # "8 oz" expands to (1, 3): overlaps Color, dropped
    )
    scores = score_examples([Example(predicted, reference)], train_counts={"B-Brand": 3, "B-Unit": 2})
    assert scores["ents_p"] == 0.5 and scores["ents_r"] == 0.5
    assert set(scores["ents_per_type"]) == {"Brand", "Unit", "Color"}
    assert scores["accuracy"] == pytest.approx(1 / 3)  # [B-Brand, B-Color, O] vs [B-Brand, O, B-Unit]
    assert scores["macro_p"] == 0.5 and scores["macro_r"] == 0.5
    assert scores["unknown_tags"] == ["B-Color"]
    assert "B-Size" not in scores["per_tag"]
    mismatch = make_doc(["Folgers", "Black"], [True, False])
    with pytest.raises(ValueError, match="example 1"):
        score_examples([Example(predicted, reference), Example(mismatch, reference)])


TAG = st.sampled_from(["O", "B-a", "I-a", "B-b", "I-b"])
DOCS = st.lists(st.lists(st.tuples(TAG, TAG), max_size=8), max_size=6)


@settings(max_examples=200, deadline=None)
@given(DOCS)
def test_tag_score_properties(docs):
    gold = [[g for g, _ in doc] for doc in docs]
    pred = [[p for _, p in doc] for doc in docs]
    scores = tag_scores(gold, pred)
    assert 0.0 <= scores["accuracy"] <= 1.0
    assert min(scores["macro_p"], scores["macro_r"]) <= scores["macro_f1"] + 1e-12
    assert scores["macro_f1"] <= max(scores["macro_p"], scores["macro_r"]) + 1e-12
    support = Counter(t for doc in gold for t in doc if t != "O")
    assert scores["n_tags"] == len(support)
    for tag, row in scores["per_tag"].items():
        assert row["tp"] + row["fn"] == row["support"] == support[tag]
    perfect = tag_scores(gold, gold)
    if support:
        assert perfect["macro_f1"] == perfect["macro_p"] == perfect["macro_r"] == 1.0
    if any(gold):
        assert perfect["accuracy"] == 1.0


@given(st.floats(0, 1), st.floats(0, 1))
def test_macro_f1_between_min_and_max(p, r):
    assert min(p, r) - 1e-12 <= macro_f1(p, r) <= max(p, r) + 1e-12
