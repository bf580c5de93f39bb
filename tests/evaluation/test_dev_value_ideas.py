"""``benchmarks/dev_value_ideas.py``'s helpers (no model): the training values exclude the dev rows, and snapping
replaces a value only by a training value of the same attribute that occurs in the title and overlaps it."""
import json

import pytest

from spacy_mtlave.evaluation.attribute_values import read_offers

from ..helpers import load_benchmark


@pytest.fixture(scope="module")
def ideas():
    return load_benchmark("dev_value_ideas")


def record(text, category, **gold):
    return json.dumps({"input": text, "category": category, "target_scores": {k: {v: 1 for v in values} for k, values in gold.items()}})


def test_training_values_skip_dev_rows_and_na(ideas, tmp_path):
    lines = [record(f"Brand{i} Coffee", "Coffee", Brand=[f"Brand{i}"], Flavor=["n/a"]) for i in range(10)]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    known = ideas.training_values(path, every=5)
    # rows 4 and 9 of the category are dev rows (index % 5 == 4)
    assert known[("Coffee", "Brand")] == {f"Brand{i}" for i in range(10) if i % 5 != 4}
    assert known.get(("Coffee", "Flavor"), set()) == set()


def test_snap_extends_and_overlaps(ideas, tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text(
        "\n".join([
            record("Kashi GO Cereal 12 oz", "Breakfast Cereal", Brand=["Kashi GO"]),
            record("Nature Valley Peak Granola", "Breakfast Cereal", Brand=["Nature Valley"]),
            record("Kashi Cereal", "Breakfast Cereal", Brand=["Kashi"]),
        ]) + "\n",
        encoding="utf8",
    )
    offers = read_offers(path)
    known = {("Breakfast Cereal", "Brand"): {"Kashi GO", "Nature Valley"}, ("Coffee", "Brand"): {"Kashi GO Max"}}
    predictions = [{"Brand": "Kashi"}, {"Brand": "Nature Valley Peak"}, {"Brand": "Kashi"}]
    extended = ideas.snap(offers, predictions, known, "extend")
    assert extended == [{"Brand": "Kashi GO"}, {"Brand": "Nature Valley Peak"}, {"Brand": "Kashi"}]  # "Kashi GO" not in title 3
    overlapped = ideas.snap(offers, predictions, known, "overlap")
    assert overlapped == [{"Brand": "Kashi GO"}, {"Brand": "Nature Valley"}, {"Brand": "Kashi"}]
    assert predictions[0] == {"Brand": "Kashi"}  # inputs untouched
