"""ExtractGPT's attribute-value metric (issue 15) on hand-made records: every outcome, multi-valued gold, ``n/a``,
empty predictions, strict mode, the most-confident-span rule, and the command line."""
import json

import pytest
import spacy
from spacy.tokens import Span

from spacy_mtlave.evaluation.attribute_values import (
    Offer,
    count_slots,
    predicted_values,
    prf,
    read_offers,
    score_offers,
    slot_outcome,
)

from ..helpers import assert_one_line_error, invoke


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


RECORDS = [
    {"input": "Acme Dark Roast Coffee 12 oz", "category": "Coffee",
     "target_scores": {"Brand": {"Acme": 1}, "Roast type": {"Dark Roast": 1}, "Net content": {"12 oz": 1}, "Flavor": {"n/a": 1}}},
    {"input": "Yogi Green Tea, Mint/Lemon, 16 bags", "category": "Tea",
     "target_scores": {"Brand": {"Yogi": 1}, "Flavor": {"Mint": 1, "Lemon": 1}, "Pack size": {"16 bags": 1}, "Caffeine": {"n/a": 1}}},
]


def test_slot_outcomes():
    assert slot_outcome(None, None) == "NN"
    assert slot_outcome(None, "x") == "NV"
    assert slot_outcome(["a"], None) == "VN"
    assert slot_outcome(["a", "b"], "b") == "VC"  # multi-valued gold: any value counts
    assert slot_outcome(["a"], "a ") == "VW"  # exact string match, as their code
    assert slot_outcome(["Dark Roast"], "Dark") == "VW"


def test_read_offers_and_counts(tmp_path):
    offers = read_offers(write_jsonl(tmp_path / "t.jsonl", RECORDS))
    assert offers[0].gold["Flavor"] is None and offers[1].gold["Flavor"] == ["Mint", "Lemon"]
    predictions = [
        {"Brand": "Acme", "Roast type": "Dark", "Flavor": "Vanilla", "Item form": "Ground"},  # VC, VW, NV; VN for Net content
        {"Flavor": "Lemon", "Pack size": "16 bags"},  # VN Brand, VC, VC, NN Caffeine
    ]
    counts = count_slots(offers, predictions)
    assert counts["Coffee", "Brand"]["VC"] == 1 and counts["Coffee", "Roast type"]["VW"] == 1
    assert counts["Coffee", "Flavor"]["NV"] == 1 and counts["Coffee", "Net content"]["VN"] == 1
    assert ("Coffee", "Item form") not in counts  # not in the record: not counted (their protocol)
    assert counts["Tea", "Brand"]["VN"] == 1 and counts["Tea", "Caffeine"]["NN"] == 1
    scores = score_offers(offers, predictions)
    assert scores["overall"]["counts"] == {"NN": 1, "NV": 1, "VN": 2, "VC": 3, "VW": 1}
    # P = VC / (NV + VC + VW) = 3/5, R = VC / (VN + VC + VW) = 3/6
    assert scores["overall"]["micro"]["precision"] == pytest.approx(0.6)
    assert scores["overall"]["micro"]["recall"] == pytest.approx(0.5)
    assert scores["overall"]["micro"]["f1"] == pytest.approx(2 * 0.6 * 0.5 / 1.1)
    # macro: mean F1 over (category, attribute) pairs with a slot other than NN (Tea/Caffeine is left out)
    pairs = [prf(c) for key, c in counts.items() if key != ("Tea", "Caffeine")]
    assert scores["overall"]["macro"]["f1"] == pytest.approx(sum(p["f1"] for p in pairs) / len(pairs))
    assert scores["per_category"]["Tea"]["micro"]["precision"] == pytest.approx(1.0)
    strict = score_offers(offers, predictions, strict=True)
    assert strict["overall"]["counts"]["NV"] == 2  # Item form counted against precision


def test_empty_predictions_score_zero_not_nan(tmp_path):
    offers = read_offers(write_jsonl(tmp_path / "t.jsonl", RECORDS))
    scores = score_offers(offers, [{}, {}])
    assert scores["overall"]["micro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert scores["overall"]["counts"]["VN"] == 6 and scores["overall"]["counts"]["NN"] == 2


def test_one_value_per_attribute_is_the_most_confident_span():
    nlp = spacy.blank("en")
    doc = nlp("Mint tea Lemon tea")
    spans = [Span(doc, 0, 1, label="Flavor"), Span(doc, 2, 3, label="Flavor")]
    spans[0]._.confidence, spans[1]._.confidence = 0.4, 0.9
    doc.spans["attributes"] = spans
    assert predicted_values(doc) == {"Flavor": "Lemon"}
    spans[0]._.confidence = 0.9  # a tie: the earlier span
    doc.spans["attributes"] = spans
    assert predicted_values(doc) == {"Flavor": "Mint"}


@pytest.mark.parametrize(
    "record, field",
    [
        ({"input": "x", "target_scores": {}}, "category"),
        ({"input": "x", "category": "Tea"}, "target_scores"),
        ({"input": 5, "category": "Tea", "target_scores": {}}, "input"),
        ({"input": "x", "category": 3, "target_scores": {}}, "category"),
        ({"input": "x", "category": "Tea", "target_scores": {"Brand": "Yogi"}}, "target_scores.Brand"),
        ({"input": "x", "category": "Tea", "target_scores": []}, "target_scores"),
    ],
)
def test_bad_test_lines_name_file_line_and_field(tmp_path, trained_single, record, field):
    path = write_jsonl(tmp_path / "t.jsonl", [RECORDS[0], record])
    result = invoke("evaluate", trained_single, path, "--metric", "attribute-values")
    assert_one_line_error(result, f"{path}:2", f"field '{field}'")


def test_command_scores_names_missing_categories_and_writes_json(tmp_path, trained_single):
    test = write_jsonl(tmp_path / "t.jsonl", RECORDS)
    out = tmp_path / "av.json"
    result = invoke("evaluate", f"Coffee={trained_single}", test, "--metric", "attribute-values", "--output", out)
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["categories_without_model"] == {"Tea": 1}
    assert "no model for category 'Tea'" in result.output
    assert scores["per_category"]["Tea"]["counts"]["VN"] == 3  # scored as predicting nothing, not skipped
    assert scores["overall"]["n_slots"] == 8
    assert "| **all** |" in result.output
    result = invoke("evaluate", trained_single, test, "--metric", "attribute-values")
    assert_one_line_error(result, "names no vertical", "--model CATEGORY=")
    assert_one_line_error(invoke("evaluate", trained_single, test, "--metric", "spans"), "--metric must be benchmark or attribute-values")
    assert_one_line_error(invoke("evaluate", "Coffee=/nope", test, "--metric", "attribute-values"), "/nope: model not found")


def test_offer_dataclass_keeps_line_numbers(tmp_path):
    offers = read_offers(write_jsonl(tmp_path / "t.jsonl", RECORDS))
    assert [o.line for o in offers] == [1, 2] and isinstance(offers[0], Offer)


def test_vote_values_majority_ties_and_min_votes():
    from spacy_mtlave.evaluation.value_vote import majority, vote_values

    assert [majority(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    proposals = [
        {"Brand": ("Acme", 0.9), "Flavor": ("Mint", 0.5), "Size": ("12 oz", 0.8)},
        {"Brand": ("Acme", 0.7), "Flavor": ("Lemon", 0.9)},
        {"Brand": ("Acme Co", 0.99), "Flavor": ("Mint", 0.4)},
    ]
    # majority of 3 = 2: Acme (2 votes) beats the more confident Acme Co (1); Size has one vote only
    assert vote_values(proposals) == {"Brand": "Acme", "Flavor": "Mint"}
    # one vote is enough: Size kept; the Flavor tie-break is by votes first (Mint 2 > Lemon 1)
    assert vote_values(proposals, min_votes=1) == {"Brand": "Acme", "Flavor": "Mint", "Size": "12 oz"}
    assert vote_values(proposals, min_votes=3) == {}
    # equal votes: the larger summed confidence wins, then the earlier pipeline
    assert vote_values([{"A": ("x", 0.2)}, {"A": ("y", 0.6)}], min_votes=1) == {"A": "y"}
    assert vote_values([{"A": ("x", 0.5)}, {"A": ("y", 0.5)}], min_votes=1) == {"A": "x"}
    assert vote_values([]) == {}
    with pytest.raises(ValueError, match="min_votes"):
        vote_values(proposals, min_votes=4)


def test_command_ensemble_of_models_votes(tmp_path, trained_single):
    test = write_jsonl(tmp_path / "t.jsonl", RECORDS)
    one, three = tmp_path / "one.json", tmp_path / "three.json"
    assert invoke("evaluate", f"Coffee={trained_single}", test, "--metric", "attribute-values", "--output", one).exit_code == 0
    result = invoke("evaluate", f"Coffee={trained_single}", test, "--metric", "attribute-values", "--model", f"Coffee={trained_single}",
                    "--model", f"Coffee={trained_single}", "--min-votes", "3", "--output", three)
    assert result.exit_code == 0, result.output
    assert "ensembles (models voting on each value): Coffee 3" in result.output
    single, ensemble = json.loads(one.read_text()), json.loads(three.read_text())
    assert ensemble["ensemble_sizes"] == {"Coffee": 3}
    # three copies of one pipeline agree with it on every slot, even when all three must vote for a value
    assert ensemble["overall"]["counts"] == single["overall"]["counts"]
    result = invoke("evaluate", f"Coffee={trained_single}", test, "--metric", "attribute-values", "--min-votes", "2")
    assert_one_line_error(result, "--min-votes must be between 1 and the smallest ensemble's size (1), got 2")
    assert_one_line_error(invoke("evaluate", str(trained_single), test, "--min-votes", "2"), "--min-votes and --strict apply to --metric attribute-values")
