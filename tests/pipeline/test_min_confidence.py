"""``ave_tagger``'s ``min_confidence``: a prediction-time floor on span confidence, set when loading a pipeline."""
import pytest
import spacy

TEXTS = ["Lavazza Super Crema Whole Bean Coffee Blend, Medium Espresso Roast, 2.2 lb Bag",
         "Starbucks Dark French Roast Ground Coffee 12 oz", "Folgers Classic Roast K-Cup Pods, 24 Count", ""]


def tagger_name(nlp):
    return next(name for name, pipe in nlp.pipeline if pipe.__class__.__name__ == "AVETagger")


def spans(nlp):
    name = tagger_name(nlp)
    key = nlp.get_pipe(name).cfg["spans_key"]
    return [[(s.start, s.end, s.label_, s._.confidence) for s in doc.spans[key]] for doc in nlp.pipe(TEXTS)], [
        [(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(TEXTS)]


def test_min_confidence_keeps_exactly_the_spans_at_or_above_it(trained_single):
    nlp = spacy.load(trained_single)
    assert nlp.get_pipe(tagger_name(nlp)).cfg["min_confidence"] == 0.0  # default: every span
    everything, ents = spans(nlp)
    confidences = sorted(c for doc in everything for *_, c in doc)
    assert confidences, "the tiny model should predict some spans"
    floor = confidences[len(confidences) // 2]  # about half the spans are below it
    name = tagger_name(nlp)
    kept, kept_ents = spans(spacy.load(trained_single, config={"components": {name: {"min_confidence": floor}}}))
    assert kept == [[s for s in doc if s[3] >= floor] for doc in everything]
    assert kept_ents == [[s[:3] for s in doc] for doc in kept]  # doc.ents holds the same spans
    assert sum(map(len, kept)) < sum(map(len, everything))
    none, none_ents = spans(spacy.load(trained_single, config={"components": {name: {"min_confidence": 1.0}}}))
    assert all(c == 1.0 for doc in none for *_, c in doc) and none_ents == [[s[:3] for s in doc] for doc in none]


def test_min_confidence_out_of_range_is_an_error(trained_single):
    nlp = spacy.load(trained_single)
    with pytest.raises(ValueError, match="min_confidence must be in \\[0, 1\\], got 1.5"):
        spacy.load(trained_single, config={"components": {tagger_name(nlp): {"min_confidence": 1.5}}})


def test_set_min_confidence_on_a_loaded_pipeline_equals_loading_with_it(trained_single):
    nlp = spacy.load(trained_single)
    name = tagger_name(nlp)
    everything, _ = spans(nlp)
    floor = sorted(c for doc in everything for *_, c in doc)[0] + 1e-6
    nlp.get_pipe(name).set_min_confidence(floor)
    assert spans(nlp) == spans(spacy.load(trained_single, config={"components": {name: {"min_confidence": floor}}}))
    with pytest.raises(ValueError, match="min_confidence"):
        nlp.get_pipe(name).set_min_confidence(-0.1)
