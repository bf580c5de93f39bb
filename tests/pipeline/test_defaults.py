"""spaCy conventions: ``nlp.add_pipe("ave_tagger")`` and ``nlp.add_pipe("ave_coupling")`` work without a config."""
import spacy
from spacy.training import Example

from ..helpers import make_docs


def test_add_pipe_ave_tagger_with_the_default_model_initializes_and_trains():
    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("ave_tagger")
    assert nlp.config["components"]["ave_tagger"]["model"]["@architectures"] == "spacy_mtlave.BiLSTMCRFTagger.v1"
    gold = make_docs(nlp, "Coffee", 40, seed=0)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    optimizer = nlp.initialize(lambda: examples)
    assert set(tagger.labels) == {"Brand", "Flavor", "Size"}
    losses = [nlp.update(examples, sgd=optimizer)["ave_tagger"] for _ in range(12)]
    assert losses[-1] < 0.5 * losses[0]
    doc = nlp(gold[0].text)
    assert [(e.text, e.label_) for e in doc.ents] == [(e.text, e.label_) for e in gold[0].ents]
    assert all(0 < e._.confidence <= 1 for e in doc.ents)


def test_add_pipe_ave_coupling_has_a_default_model():
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec")
    coupling = nlp.add_pipe("ave_coupling")
    model = nlp.config["components"]["ave_coupling"]["model"]
    assert model["@architectures"] == "spacy_mtlave.CouplingModel.v3" and model["score"] == "emission"
    assert coupling.settings["pairing"] == "all" and coupling.cfg["batch_size"] is None
