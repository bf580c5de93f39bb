"""Issue 20: the prediction fast path (row cache and direct layer calls in the embedding, one-doc LSTM call, direct
emission layer, cached numpy CRF with mask-free batch-1 Viterbi and forward-backward) gives the reference path's
outputs: the same predictions and the same confidences, bit for bit in the default ``ROW_CACHE = "auto"`` (which is
"features" for this ``WordCharEmbed.v1`` pipeline; the issue asks for 1e-6); the opt-in ``"rows"`` mode keeps the
predictions and confidences to 1e-5 for v1 (v2, bit for bit: ``test_exact_row_cache.py``). On many titles,
including empty and one-token texts."""
import random

import numpy
import pytest
import spacy
import torch
from thinc.layers.chain import forward as chain_forward

from spacy_mtlave.bio import bio_tags
from spacy_mtlave.ml import embed as embed_module
from spacy_mtlave.ml.crf import CRF
from spacy_mtlave.ml.crf_numpy import numpy_crf
from spacy_mtlave.ml.tagger_model import crf_module, pad_scores

from ..helpers import BRANDS, COLORS, NOUNS, SIZES, make_title

ODD = ["", " ", "\n", "Acme", "12", "  Acme  ", "oz oz oz", "Acme Acme red red coffee coffee , , 12 oz 12 oz"]


def titles(n: int = 120, seed: int = 3):
    rng = random.Random(seed)
    out = [make_title(rng, rng.choice(list(NOUNS)))[0] for _ in range(n)]
    words = BRANDS + COLORS + SIZES + ["unseen", "Zzyzx", "ÉCLAIR", "☕", "3.42-Ounce", "(Pack", "of", "6)"]
    out += [" ".join(rng.choice(words) for _ in range(rng.randint(1, 25))) for _ in range(n // 2)]
    return ODD + out


def reference(nlp, text: str):
    """What the pipeline computed before the fast path: the thinc layers end to end (WordCharEmbed's inner chain,
    the encoder's list2padded >> packed LSTM >> padded2list chain, with_array(Linear)) and the CRF's batched numpy
    code on a batch of one, then the component's own span building."""
    doc = nlp.make_doc(text)
    if not len(doc):
        return []
    tok2vec = nlp.get_pipe("tok2vec").model
    embed, encoder = tok2vec.layers
    rows = embed.layers[0].predict([doc])
    tokvecs = chain_forward(encoder, rows, False)[0]
    tagger = nlp.get_pipe("ave_tagger")
    scores = tagger.model.get_ref("emitter").predict(tokvecs)
    emissions, mask = pad_scores(scores, len(tagger.tags))
    crf = crf_module(tagger.model).to_numpy()
    path = crf._decode_batch(emissions, mask, tagger.cfg["bio_constraints"])[0]
    probs = crf._marginals_batch(emissions, mask)[0, numpy.arange(len(path)), path]
    tagger.set_annotations([doc], [(path, probs)])
    return [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]


def ents(doc):
    return [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]


def assert_same(got, expected, exact: bool, tolerance: float = 1e-6) -> None:
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    for g, e in zip(got, expected):
        if exact:
            assert g[3] == e[3]
        else:
            assert abs(g[3] - e[3]) <= tolerance


V1 = {"components.tok2vec.model.embed.@architectures": "spacy_mtlave.WordCharEmbed.v1"}


@pytest.fixture
def nlp(trained_single):
    """The fixture pipeline as ``WordCharEmbed.v1`` (the shipped configs use v2; same weights), whose default path
    must give the thinc path's outputs bit for bit."""
    embed_module.clear_row_cache()
    nlp = spacy.load(trained_single, config=V1)
    assert embed_module.row_cache_mode(next(n for n in nlp.get_pipe("tok2vec").model.walk() if n.name == "word_char_embed")) == "features"
    return nlp


def test_batch_one_equals_the_reference_path(nlp):
    texts = titles()
    expected = [reference(nlp, t) for t in texts]
    for text, exp in zip(texts, expected):  # the cache fills as it goes: later titles hit earlier words
        assert_same(ents(nlp(text)), exp, exact=True)
    for text, exp in zip(texts, expected):  # all hits
        assert_same(ents(nlp(text)), exp, exact=True)


def test_batches_equal_the_thinc_path(nlp, monkeypatch):
    texts = titles()
    fast = [ents(d) for d in nlp.pipe(texts, batch_size=64)]
    monkeypatch.setattr(embed_module, "ROW_CACHE", "off")
    slow = [ents(d) for d in nlp.pipe(texts, batch_size=64)]
    for got, exp in zip(fast, slow):
        assert_same(got, exp, exact=True)


def test_whole_row_cache_keeps_predictions(nlp, monkeypatch):
    """The opt-in ``ROW_CACHE = "rows"`` (whole rows cached, char BiLSTM included): same predictions; confidences
    within 1e-5, the float32 noise the reference path shows itself between batch sizes (a char vector's last bit
    depends on the other words of its LSTM batch), not within 1e-6 (which is why it is not the default)."""
    texts = titles()
    expected = [reference(nlp, t) for t in texts]
    monkeypatch.setattr(embed_module, "ROW_CACHE", "rows")
    for _ in range(2):
        for text, exp in zip(texts, expected):
            assert_same(ents(nlp(text)), exp, exact=False, tolerance=1e-5)


def test_cache_is_emptied_by_training_and_by_loading(nlp, trained_single, data_dir):
    from spacy.tokens import DocBin
    from spacy.training import Example

    text = "Lavazza dark espresso , 12 oz"
    before = ents(nlp(text))
    embed = nlp.get_pipe("tok2vec").model.layers[0]
    assert embed_module.row_cache_of(embed) is not None
    docs = list(DocBin().from_disk(data_dir / "coffee" / "train.spacy").get_docs(nlp.vocab))[:20]
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    optimizer = nlp.resume_training()
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    assert embed_module.row_cache_of(embed) is None  # emptied by the training pass
    after = ents(nlp(text))
    assert_same(after, reference(nlp, text), exact=True)  # new parameters, no stale rows
    assert [a[3] for a in after] != [b[3] for b in before]
    nlp.from_disk(trained_single)  # back to the saved parameters: replaced arrays, the cache starts over
    assert_same(ents(nlp(text)), before, exact=True)


def test_cache_size_bound(nlp, monkeypatch):
    monkeypatch.setattr(embed_module, "ROW_CACHE_SIZE", 10)
    texts = titles(40)
    expected = [reference(nlp, t) for t in texts]
    for text, exp in zip(texts, expected):
        assert_same(ents(nlp(text)), exp, exact=True)
    embed = nlp.get_pipe("tok2vec").model.layers[0]
    assert len(embed_module.row_cache_of(embed).index) <= 25  # at most one title's tokens past the bound


def test_numpy_crf_snapshot_follows_parameter_changes():
    crf = CRF(5)
    crf.set_bio_constraints(bio_tags(["A", "B"]))
    first = numpy_crf(crf)
    assert numpy_crf(crf) is first
    with torch.no_grad():
        crf.transitions[0, 1] += 1.0  # in place, as an optimizer step or load_state_dict does
    second = numpy_crf(crf)
    assert second is not first
    assert second.transitions[0, 1] == pytest.approx(first.transitions[0, 1] + 1.0)
    crf.set_bio_constraints(["O", "B-A", "B-B", "I-B", "I-A"])
    assert numpy_crf(crf) is not second


@pytest.mark.parametrize("scale", [0.1, 3.0, 40.0, 500.0])
def test_batch_one_crf_paths_equal_the_batched_code_bit_for_bit(scale):
    """The mask-free one-row Viterbi and stacked forward-backward against the masked batch code on the same row
    (500: transitions too spread for the rescaled matrix product, the log-sum-exp fallback)."""
    rng = numpy.random.default_rng(int(scale * 10))
    for trial in range(60):
        n_labels = int(rng.integers(1, 12))
        tags = bio_tags([f"L{i}" for i in range(n_labels)])
        crf = CRF(len(tags))
        with torch.no_grad():
            crf.transitions.copy_(torch.from_numpy(rng.standard_normal(crf.transitions.shape).astype("float32") * scale))
            crf.start.copy_(torch.from_numpy(rng.standard_normal(len(tags)).astype("float32")))
            crf.end.copy_(torch.from_numpy(rng.standard_normal(len(tags)).astype("float32")))  # not torch's global RNG
        crf.set_bio_constraints(tags)
        fast = crf.to_numpy()
        length = int(rng.integers(1, 50))
        emissions = (rng.standard_normal((1, length, len(tags))) * scale).astype("float32")
        mask = numpy.ones((1, length), dtype=bool)
        for constrained in (True, False):
            assert fast.decode(emissions, mask, constrained) == fast._decode_batch(emissions, mask, constrained)
        assert numpy.array_equal(fast.marginals(emissions, mask), fast._marginals_batch(emissions, mask))
        with torch.no_grad():
            expected = crf.marginals(torch.from_numpy(emissions), torch.from_numpy(mask)).numpy()
        # two float32 algorithms (numpy vs torch): equal up to rounding, which reaches ~1.3e-5 at scale 3
        numpy.testing.assert_allclose(fast.marginals(emissions, mask), expected, atol=5e-5)


def test_one_doc_encoder_call_equals_the_packed_chain(nlp):
    encoder = nlp.get_pipe("tok2vec").model.layers[1]
    rng = numpy.random.default_rng(0)
    width = encoder.layers[1].shims[0]._model.lstm.input_size
    for n in (1, 2, 7, 40):
        X = rng.standard_normal((n, width)).astype("float32")
        assert numpy.array_equal(encoder.predict([X])[0], chain_forward(encoder, [X], False)[0][0])


def test_empty_docs_in_a_batch(nlp):
    docs = list(nlp.pipe(["", "Acme red coffee , 12 oz", " ", "Tazo"], batch_size=4))
    assert ents(docs[0]) == [] and ents(docs[2]) == []
    assert_same(ents(docs[1]), reference(nlp, "Acme red coffee , 12 oz"), exact=True)


def test_threads_share_the_cache_safely(nlp):
    from concurrent.futures import ThreadPoolExecutor

    texts = titles(60, seed=11)
    expected = [reference(nlp, t) for t in texts]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda t: ents(nlp(t)), texts * 3))
    for g, e in zip(got, expected * 3):
        assert_same(g, e, exact=True)


def test_a_deleted_pipeline_is_freed_after_predicting(trained_single):
    """The row cache lives in the model's attrs: predicting must not keep a pipeline (and its vectors) alive after the
    user drops it, and a copied model starts without the cache."""
    import gc
    import weakref

    import spacy

    nlp = spacy.load(trained_single)
    list(nlp.pipe(["Lavazza dark roast espresso, 12 oz", "Folgers classic roast"]))
    embed = next(node for node in nlp.get_pipe("tok2vec").model.walk() if embed_module.row_cache_of(node) is not None)
    assert embed_module.row_cache_of(embed.copy()) is None
    assert embed.to_bytes()  # the cache does not break serialization
    alive = weakref.ref(nlp)
    del nlp, embed
    gc.collect()
    assert alive() is None
