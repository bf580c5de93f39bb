"""``ave_tagger`` learning from incomplete labels (issue 16): which tags an unlabelled token may take, the loss in each
mode, docs without a consistent tag sequence, and ``--partial-labels`` / ``drop-spans`` on the command line."""
import json
import warnings

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_mtlave.bio import bio_tags, partial_allowed_tags
from spacy_mtlave.label_coverage import known_attributes, mark_partial
from spacy_mtlave.ml.tagger_model import crf_module

from ..helpers import assert_one_line_error, invoke, make_docs, write_corpus


def test_partial_allowed_tags():
    tags = bio_tags(["Brand", "Size", "Flavor"])
    gold = ["B-Brand", "I-Brand", "O", "O", "B-Size"]
    rows = partial_allowed_tags(gold, tags, {"Brand", "Flavor"})
    allowed = [{t for t, ok in zip(tags, row) if ok} for row in rows]
    assert allowed[0] == {"B-Brand"} and allowed[1] == {"I-Brand"} and allowed[4] == {"B-Size"}
    # right after a known Brand span: no I-Brand (the span keeps its end); Size is not an unlabelled attribute
    assert allowed[2] == {"O", "B-Brand", "B-Flavor", "I-Flavor"}
    assert allowed[3] == {"O", "B-Brand", "I-Brand", "B-Flavor", "I-Flavor"}


def tagger_nlp(**config):
    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("ave_tagger", config=config)
    docs = make_docs(nlp, "Coffee", 20, seed=0)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    nlp.initialize(lambda: examples)
    return nlp, tagger, examples


def losses(tagger, examples):
    scores = tagger.model.predict([eg.predicted for eg in examples])
    loss, d_scores = tagger.get_loss(examples, scores)
    return loss, d_scores


def test_loss_per_mode():
    nlp, tagger, examples = tagger_nlp()
    full, _ = losses(tagger, examples)
    for doc in (eg.reference for eg in examples):
        mark_partial(doc, [ent.label_ for ent in doc.ents])
    assert losses(tagger, examples)[0] == full  # "off": flags ignored, the full-label loss bit for bit
    tagger.cfg["partial_labels"] = "flagged"
    absent, d_absent = losses(tagger, examples)
    tagger.cfg["unlabelled_as"] = "any"
    anything, _ = losses(tagger, examples)
    # more consistent paths, lower negative log-likelihood: any < absent < full
    assert 0 < anything < absent < full
    assert all(numpy.isfinite(d).all() for d in d_absent)
    # a flagged doc whose every token is in a known span has the full-label loss
    tagger.cfg["unlabelled_as"] = "absent"
    doc = nlp.make_doc("Acme 12 oz")
    doc.ents = [doc.char_span(0, 4, label="Brand"), doc.char_span(5, 10, label="Size")]
    mark_partial(doc, ["Brand", "Size"])
    covered = [Example(nlp.make_doc(doc.text), doc)]
    tagger.cfg["partial_labels"] = "off"
    expected, _ = losses(tagger, covered)
    tagger.cfg["partial_labels"] = "all"
    assert losses(tagger, covered)[0] == pytest.approx(expected, rel=1e-5)


def test_flagged_mode_only_touches_flagged_docs():
    nlp, tagger, examples = tagger_nlp(partial_labels="flagged")
    full, _ = losses(tagger, examples)
    doc = next(eg.reference for eg in examples if "Brand" not in {e.label_ for e in eg.reference.ents})
    mark_partial(doc, None)  # no record: known = the labels of its spans, so its unlabelled tokens may be a Brand
    assert known_attributes(doc) == ["Flavor", "Size"]
    partial, _ = losses(tagger, examples)
    assert partial < full
    tagger.cfg["partial_labels"] = "all"
    assert losses(tagger, examples)[0] < partial


def test_doc_without_consistent_sequence_is_skipped_with_a_counted_warning():
    nlp, tagger, examples = tagger_nlp(partial_labels="all")
    crf = crf_module(tagger.model)
    crf.allowed_start.fill_(False)  # no BIO-valid first tag: no consistent path for any doc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss, d_scores = losses(tagger, examples[:3])
    assert loss == 0.0 and all(not d.any() for d in d_scores)
    messages = [str(w.message) for w in caught if "no tag sequence fits" in str(w.message)]
    assert len(messages) == 3 and "(3 so far)" in messages[-1] and examples[2].reference.text[:20] in messages[-1]
    assert tagger.n_inconsistent == 3


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="partial_labels must be one of off, flagged, all"):
        tagger_nlp(partial_labels="yes")
    with pytest.raises(ValueError, match="unlabelled_as must be one of absent, any"):
        tagger_nlp(unlabelled_as="some")


def test_drop_spans_command(tmp_path):
    corpus = write_corpus(tmp_path / "coffee", "Coffee", n_train=40)
    result = invoke("drop-spans", corpus, tmp_path / "out", "--fraction", "0.5", "--seed", "1")
    assert result.exit_code == 0, result.output
    nlp = spacy.blank("en")
    before = list(DocBin().from_disk(corpus / "train.spacy").get_docs(nlp.vocab))
    after = list(DocBin().from_disk(tmp_path / "out" / "train.spacy").get_docs(nlp.vocab))
    n_before, n_after = sum(len(d.ents) for d in before), sum(len(d.ents) for d in after)
    assert [d.text for d in before] == [d.text for d in after]
    assert n_after == n_before - round(0.5 * n_before)
    assert f"removed {n_before - n_after} of {n_before}" in result.output
    for b, a in zip(before, after):
        assert {(e.start, e.end, e.label_) for e in a.ents} <= {(e.start, e.end, e.label_) for e in b.ents}
        assert a._.partial_labels and list(a._.known_attributes) == sorted({e.label_ for e in a.ents})
    assert (tmp_path / "out" / "dev.spacy").read_bytes() == (corpus / "dev.spacy").read_bytes()
    # nested: the spans removed at 0.3 are among those removed at 0.5
    invoke("drop-spans", corpus, tmp_path / "out3", "--fraction", "0.3", "--seed", "1")
    fewer = list(DocBin().from_disk(tmp_path / "out3" / "train.spacy").get_docs(nlp.vocab))
    for a, f in zip(after, fewer):
        assert {(e.start, e.end) for e in a.ents} <= {(e.start, e.end) for e in f.ents}
    assert_one_line_error(invoke("drop-spans", corpus, tmp_path / "x", "--fraction", "1.5"), "--fraction must be in (0, 1]")


def test_train_partial_labels_option_is_checked_and_recorded(tmp_path, data_dir):
    result = invoke("train", data_dir / "coffee", tmp_path / "bad", "--partial-labels", "maybe", "--vectors", data_dir / "vectors")
    assert_one_line_error(result, "--partial-labels must be one of absent, any")


@pytest.mark.slow
def test_train_with_partial_labels_records_it(tmp_path, data_dir):
    from spacy_mtlave.training.train import train_vertical

    from ..helpers import TINY

    out = tmp_path / "run"
    best = train_vertical(data_dir / "coffee", out, vectors=data_dir / "vectors", max_steps=10, overrides=TINY, partial_labels="any")
    run = json.loads((out / "run.json").read_text())
    assert run["overrides"]["partial_labels"] == "any"
    tagger = spacy.load(best).get_pipe("ave_tagger")
    assert (tagger.cfg["partial_labels"], tagger.cfg["unlabelled_as"]) == ("all", "any")


def test_convert_specs_marks_docs_partial_with_the_spec_keys(tmp_path):
    csv = tmp_path / "specs.csv"
    spec = '{"product_specification"=>[{"key"=>"Color", "value"=>"Red"}, {"key"=>"Fabric", "value"=>"NA"}]}'
    csv.write_text('product_name,description,category,product_specifications\n"Acme Red Shirt","A red shirt",Shirts,"' + spec.replace('"', '""') + '"\n')
    result = invoke("convert", csv, tmp_path / "out", "--format", "specs", "--dev-every", "0")
    assert result.exit_code == 0, result.output
    doc = next(DocBin().from_disk(tmp_path / "out" / "shirts" / "train.spacy").get_docs(spacy.blank("en").vocab))
    assert doc._.partial_labels is True
    assert list(doc._.known_attributes) == ["Color", "Fabric"]  # "NA": the seller said absent, still known
    assert known_attributes(doc) == ["Color", "Fabric"]


def test_unlabelled_o_weight_mixes_the_two_losses():
    _, tagger, examples = tagger_nlp(partial_labels="all", unlabelled_as="any")
    partial, d_partial = losses(tagger, examples)
    tagger.cfg["unlabelled_o_weight"] = 1.0
    full_w, d_full = losses(tagger, examples)
    tagger.cfg["partial_labels"] = "off"
    full, d_expected = losses(tagger, examples)
    assert full_w == pytest.approx(full, rel=1e-5)
    assert all(numpy.allclose(a, b, atol=1e-5) for a, b in zip(d_full, d_expected))
    tagger.cfg["partial_labels"], tagger.cfg["unlabelled_o_weight"] = "all", 0.25
    mixed, d_mixed = losses(tagger, examples)
    assert mixed == pytest.approx(0.75 * partial + 0.25 * full, rel=1e-5)
    assert all(numpy.allclose(m, 0.75 * p + 0.25 * f, atol=1e-5) for m, p, f in zip(d_mixed, d_partial, d_expected))
    with pytest.raises(ValueError, match="unlabelled_o_weight must be in"):
        tagger_nlp(unlabelled_o_weight=1.5)
