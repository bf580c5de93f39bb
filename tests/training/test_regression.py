"""Behaviour unchanged across refactors: a pair trained for a fixed number of steps with a fixed seed gives the dev
scores and predictions recorded in tests/data/pair_regression.json (recorded before the package layout moved).
``UPDATE_REGRESSION=1 pytest tests/test_regression.py`` re-records it (say why in the commit)."""
import json
import os
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_mtlave.evaluation.evaluate import evaluate_pipeline
from spacy_mtlave.training.train import train_pair

from ..helpers import TINY

RECORD = Path(__file__).parent / "data" / "pair_regression.json"


def outcome(data_dir: Path, out: Path) -> dict:
    outputs = train_pair(data_dir / "coffee", data_dir / "tea", out, vectors=data_dir / "vectors", seed=0, max_steps=12, overrides=dict(TINY, **{"training.eval_frequency": 4}))
    result = {}
    for vertical, path in outputs.items():
        dev = data_dir / vertical.lower() / "dev.spacy"
        nlp = spacy.load(path)
        texts = [doc.text for doc in DocBin().from_disk(dev).get_docs(nlp.vocab)]
        result[vertical] = {
            "dev_macro_f1": round(evaluate_pipeline(nlp, dev)["macro_f1"], 6),
            "predictions": [[(e.start_char, e.end_char, e.label_, round(e._.confidence, 4)) for e in doc.ents] for doc in nlp.pipe(texts)],
        }
    return json.loads(json.dumps(result))


@pytest.mark.slow
def test_pair_training_gives_the_recorded_scores_and_predictions(data_dir, tmp_path):
    got = outcome(data_dir, tmp_path / "pair")
    if os.environ.get("UPDATE_REGRESSION"):
        RECORD.write_text(json.dumps(got) + "\n", encoding="utf8")
    expected = json.loads(RECORD.read_text(encoding="utf8"))
    for vertical in expected:
        assert got[vertical]["dev_macro_f1"] == pytest.approx(expected[vertical]["dev_macro_f1"], abs=1e-6)
        for g, e in zip(got[vertical]["predictions"], expected[vertical]["predictions"]):
            assert [x[:3] for x in g] == [x[:3] for x in e]
            # the CPU's float kernels (blis/MKL take other code paths on Intel and AMD) move 12 steps of training by up
            # to 0.011 in confidence (recorded on an Intel Xeon, measured 0.0111 on an AMD EPYC); spans, labels and the
            # dev score stay exact
            assert [x[3] for x in g] == pytest.approx([x[3] for x in e], abs=0.03)
