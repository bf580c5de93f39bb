"""Value-aware emissions (``spacy_mtlave.BiLSTMCRFTagger.v2``, issue 15): the known-value match features, the
dictionary built at initialize from the gold spans, and that it is saved with the pipeline."""
import numpy
import pytest
import spacy
from spacy.training import Example

from spacy_mtlave.bio import bio_tags
from spacy_mtlave.ml.value_features import build_value_matches, known_values, value_key

from ..helpers import make_docs

TAGS = bio_tags(["Brand", "Size"])


def matches_layer(dropout=0.5):
    layer = build_value_matches(max_tokens=3, dropout=dropout)
    layer.attrs["values"] = {value_key(["lavazza"]): ["Brand"], value_key(["12", "oz"]): ["Size"], value_key(["acme"]): ["Brand", "Size"]}
    layer.attrs["tags"] = TAGS
    return layer


def test_known_phrases_set_b_and_i_features_case_insensitively():
    nlp = spacy.blank("en")
    doc = nlp("LAVAZZA coffee 12 oz acme")
    (features,), _ = matches_layer()([doc], is_train=False)
    assert features.shape == (5, len(TAGS))
    expected = numpy.zeros_like(features)
    expected[0, TAGS.index("B-Brand")] = 1
    expected[2, TAGS.index("B-Size")] = expected[3, TAGS.index("I-Size")] = 1
    expected[4, TAGS.index("B-Brand")] = expected[4, TAGS.index("B-Size")] = 1  # a phrase known for two attributes
    assert numpy.array_equal(features, expected)
    assert not features[:, TAGS.index("O")].any()


def test_matches_are_dropped_in_training_only():
    nlp = spacy.blank("en")
    doc = nlp("lavazza 12 oz")
    layer = matches_layer(dropout=1.0)
    (train,), _ = layer([doc], is_train=True)
    (predict,), _ = layer([doc], is_train=False)
    assert not train.any() and predict.sum() == 3
    numpy.random.seed(0)
    half = matches_layer(dropout=0.5)
    kept = sum(half([doc] * 200, is_train=True)[0][i][0, TAGS.index("B-Brand")] for i in range(200))
    assert 60 < kept < 140


def test_known_values_deduplicates_per_label():
    values = known_values([("Brand", ["Acme"]), ("Brand", ["ACME"]), ("Size", ["Acme"]), ("Size", ["12", "oz"])])
    assert values == {"Brand": [["Acme"]], "Size": [["Acme"], ["12", "oz"]]}


V2 = {
    "@architectures": "spacy_mtlave.BiLSTMCRFTagger.v2",
    "tok2vec": {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {"@architectures": "spacy_mtlave.WordCharEmbed.v1", "width": 16, "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                  "rows": [200, 100, 100, 50], "include_static_vectors": False, "char_dim": 8, "char_width": 8, "max_chars": 20},
        "encode": {"@architectures": "spacy_mtlave.BiLSTMEncoder.v1", "width": 16, "hidden_width": 32, "depth": 1, "dropout": 0.0},
    },
}


@pytest.fixture(scope="module")
def trained_v2(tmp_path_factory):
    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("ave_tagger", config={"model": V2})
    examples = [Example(nlp.make_doc(d.text), d) for d in make_docs(nlp, "Coffee", 40, seed=0)]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(15):
        nlp.update(examples, sgd=optimizer)
    path = tmp_path_factory.mktemp("v2") / "pipeline"
    nlp.to_disk(path)
    return nlp, tagger, examples, path


def test_initialize_builds_the_dictionary_from_the_gold_spans(trained_v2):
    nlp, tagger, examples, _ = trained_v2
    known = tagger.model.get_ref("values").attrs["values"]
    gold = {(e.label_, value_key([t.text for t in e])) for eg in examples for e in eg.reference.ents}
    assert {(label, key) for key, labels in known.items() for label in labels} == gold
    assert tagger.model.get_ref("values").attrs["tags"] == tagger.tags


def test_dictionary_and_predictions_survive_saving(trained_v2):
    nlp, tagger, _, path = trained_v2
    loaded = spacy.load(path)
    assert loaded.get_pipe("ave_tagger").model.get_ref("values").attrs["values"] == tagger.model.get_ref("values").attrs["values"]
    text = "Lavazza dark coffee , 12 oz"
    assert [(e.text, e.label_) for e in loaded(text).ents] == [(e.text, e.label_) for e in nlp(text).ents]
