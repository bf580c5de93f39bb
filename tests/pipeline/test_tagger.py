"""The ave_tagger component: training through spacy train, serialization, robustness to odd input."""
import json
import subprocess
import sys
import warnings

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.evaluation.evaluate import evaluate_pipeline
from spacy_mtlave.pipeline.tagger import SPANS_KEY


def ents(doc):
    return [(e.start, e.end, e.label_, round(e._.confidence, 5)) for e in doc.ents]


def test_trained_tagger_learns_the_fixture(trained_single, data_dir):
    scores = evaluate_pipeline(trained_single, data_dir / "coffee" / "test.spacy", data_dir / "coffee" / "train.spacy")
    assert scores["n_docs"] == 12
    assert scores["ents_f"] > 0.8, scores
    assert scores["macro_f1"] > 0.8, scores


def test_annotations_ents_spans_confidence(trained_single):
    nlp = spacy.load(trained_single)
    assert nlp.pipe_names == ["tok2vec", "ave_tagger"]
    doc = nlp("Lavazza dark espresso , 12 oz")
    assert [e.label_ for e in doc.ents] == ["Brand", "Flavor", "Size"]
    assert [(s.start, s.end, s.label_) for s in doc.spans[SPANS_KEY]] == [(e.start, e.end, e.label_) for e in doc.ents]
    assert all(0.0 < e._.confidence <= 1.0 for e in doc.ents)


def test_prediction_does_not_depend_on_batch(trained_single):
    nlp = spacy.load(trained_single)
    texts = ["Acme red coffee , 12 oz", "Tazo", "Folgers black beans , 1 lb and a much longer tail of words here"]
    alone = [ents(nlp(t)) for t in texts]
    batched = [ents(d) for d in nlp.pipe(texts, batch_size=3)]
    assert alone == batched


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t ", "☕🍵 Acme 🙂 coffee", "<p>Acme <b>red</b> coffee &amp; 12 oz</p>", "Acme\x00\x07 red\u200b coffee\r\n", "ﬁne ＡＣＭＥ coffee ß"],
)
def test_odd_input_never_crashes(trained_single, text):
    nlp = spacy.load(trained_single)
    doc = nlp(text)
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc)
    if not text.strip():
        assert len(doc.ents) == 0


def test_long_description(trained_single):
    nlp = spacy.load(trained_single)
    text = " ".join(["Acme red coffee , 12 oz ."] * 3400)  # ~20,000 tokens
    doc = nlp(text)
    assert len(doc) >= 20000
    assert len(doc.ents) > 1000


def test_serialization_round_trips(trained_single, tmp_path):
    nlp = spacy.load(trained_single)
    texts = ["Acme red coffee , 12 oz", "Bigelow herbal tea , 20 count"]
    expected = [ents(d) for d in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "copy")
    assert [ents(d) for d in spacy.load(tmp_path / "copy").pipe(texts)] == expected
    nlp2 = spacy.blank("en").from_config(nlp.config)
    nlp2.from_bytes(nlp.to_bytes())
    assert [ents(d) for d in nlp2.pipe(texts)] == expected
    tagger = nlp.get_pipe("ave_tagger")
    tagger2 = nlp2.get_pipe("ave_tagger")
    tagger2.from_bytes(tagger.to_bytes())
    assert tagger2.labels == tagger.labels == ("Brand", "Flavor", "Size")


@pytest.mark.slow
def test_load_in_fresh_process_without_import(trained_single):
    code = (
        "import json, spacy; nlp = spacy.load(%r); doc = nlp('Acme red coffee , 12 oz');"
        "print(json.dumps([[e.text, e.label_] for e in doc.ents]))" % str(trained_single)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ["Acme", "Brand"] in json.loads(out.stdout.strip().splitlines()[-1])


def test_misaligned_gold_is_counted_not_fatal(trained_single):
    nlp = spacy.load(trained_single)
    tagger = nlp.get_pipe("ave_tagger")
    reference = Doc(nlp.vocab, words=["Acme", "red", "coffee"], ents=["B-Brand", "B-Flavor", "O"])
    aligned = Example(nlp.make_doc("Acme red coffee"), reference)
    assert tagger.gold_tag_ids([aligned])[0] is not None
    # a gold span ending inside a predicted token cannot be expressed on predicted tokens
    misaligned = Example(Doc(nlp.vocab, words=["Acmered", "coffee"]), Doc(nlp.vocab, words=["Acme", "red", "coffee"], spaces=[False, True, False], ents=["B-Brand", "B-Flavor", "O"]))
    assert tagger.gold_tag_ids([misaligned]) == [None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = spacy.blank("en").from_config(nlp.config)
        fresh.vocab.vectors = nlp.vocab.vectors
        fresh.initialize(lambda: [aligned, misaligned])
    assert any("1 of 2 training examples" in str(w.message) for w in caught)
    losses = fresh.update([aligned, misaligned])
    assert losses["ave_tagger"] > 0


def test_unknown_labels_at_evaluation_are_counted(trained_single, tmp_path):
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Acme red coffee , 12 oz")
    doc.ents = [doc.char_span(0, 4, label="Manufacturer")]
    DocBin(docs=[doc]).to_disk(tmp_path / "test.spacy")
    scores = evaluate_pipeline(trained_single, tmp_path / "test.spacy")
    assert scores["per_tag"]["B-Manufacturer"]["fn"] == 1
    assert "B-Brand" in scores["unknown_tags"]


def test_train_cli_reports_missing_corpus(tmp_path):
    result = CliRunner().invoke(app, ["train", str(tmp_path / "nowhere"), str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "train.spacy: not found" in result.output
    assert "Traceback" not in result.output


def test_length_buckets_cover_every_non_empty_doc_once():
    from spacy_mtlave.ml.tagger_model import length_buckets

    lengths = [3, 0, 40, 7, 4, 80, 1, 2, 0, 39]
    buckets = length_buckets(lengths)
    assert sorted(i for b in buckets for i in b) == [i for i, n in enumerate(lengths) if n]
    for bucket in buckets:
        assert max(lengths[i] for i in bucket) <= 2 * min(lengths[i] for i in bucket)


def test_span_mean_equals_numpy_mean():
    import numpy

    from spacy_mtlave.pipeline.tagger import span_mean

    probs = numpy.random.RandomState(0).rand(50).astype("float32")
    for start, end in [(0, 1), (3, 9), (0, 50), (49, 50)]:
        assert span_mean(probs, start, end) == float(probs[start:end].mean())


def test_gold_fast_path_equals_spacy_alignment(data_dir):
    from spacy_mtlave.pipeline.tagger import same_tokens_bio

    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(data_dir / "coffee" / "train.spacy").get_docs(nlp.vocab))
    for ref in docs[:20]:
        eg = Example(nlp.make_doc(ref.text), ref)
        biluo = eg.get_aligned_ner()
        expected = ["O" if t == "O" else ("B-" if t[0] in "BU" else "I-") + t[2:] for t in biluo]
        assert same_tokens_bio(eg) == expected
    other = Example(Doc(nlp.vocab, words=["Acmered", "coffee"]), docs[0])
    assert same_tokens_bio(other) is None


def test_glove_cache_is_built_once_in_a_fresh_cache_dir(tmp_path, monkeypatch):
    from spacy_mtlave.training import vectors

    built = []

    def fake_build(output_dir, **kwargs):  # the real table takes ~30 s; the cache logic is what is tested here
        built.append(output_dir)
        spacy.blank("en").to_disk(output_dir)
        (output_dir / "vocab" / "vectors").write_bytes(b"")
        return output_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no" / "such" / "cache"))
    monkeypatch.setattr(vectors, "build_glove_vectors", fake_build)
    first = vectors.ensure_glove_vectors()
    assert first == tmp_path / "no" / "such" / "cache" / "spacy_mtlave" / "glove-6b-50d" and (first / "vocab" / "vectors").exists()
    assert vectors.ensure_glove_vectors() == first and len(built) == 1
    assert sorted(p.name for p in first.parent.iterdir()) == ["glove-6b-50d"]  # no temporary folder left


def test_whitespace_tokens_are_never_part_of_an_attribute(trained_single):
    nlp = spacy.load(trained_single)
    tagger = nlp.get_pipe("ave_tagger")
    doc = nlp.make_doc("Acme  \n red coffee")
    assert [t.is_space for t in doc] == [False, True, False, False]
    brand, flavor = tagger.tags.index("B-Brand"), tagger.tags.index("I-Brand")
    probs = numpy.ones(4, dtype="float32")
    tagger.set_annotations([doc], [([brand, flavor, flavor, 0], probs)])  # Viterbi path "Acme ␣ red" as one Brand
    assert [(e.text, e.label_) for e in doc.ents] == [("Acme  \n red", "Brand")]
    tagger.set_annotations([doc], [([0, brand, flavor, 0], probs)])  # "␣ red": the space is trimmed
    assert [(e.text, e.label_) for e in doc.ents] == [("red", "Brand")]
    only_space = nlp.make_doc("  \n\t ")
    tagger.set_annotations([only_space], [([brand] * len(only_space), numpy.ones(len(only_space), "float32"))])
    assert only_space.ents == ()
