"""Issue 20: ``spacy_mtlave.WordCharEmbed.v2`` computes every part of a token's embedding row independently of the
other tokens of the batch, so its whole-row cache (the default ``ROW_CACHE = "auto"``) gives the uncached path's
outputs bit for bit; a v1 pipeline's weights load into it with the same predictions."""
import random

import numpy
import pytest
import spacy
import torch
from thinc.api import Maxout, NumpyOps

from spacy_mtlave.ml import embed as embed_module
from spacy_mtlave.ml.char_lstm_numpy import char_bilstm_predict
from spacy_mtlave.ml.embed import N_CHAR_IDS, CharBiLSTM, char_ids, row_cache_mode

from .test_predict_fast_path import V1, ents, titles

V2 = {"components.tok2vec.model.embed.@architectures": "spacy_mtlave.WordCharEmbed.v2"}


def random_words(rng: random.Random, n: int):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,-()☕é"
    return [char_ids("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))), 20) for _ in range(n)]


def char_batch(words):
    lengths = numpy.asarray([len(w) for w in words], dtype="int64")
    chars = numpy.zeros((len(words), int(lengths.max())), dtype="int64")
    for i, w in enumerate(words):
        chars[i, : len(w)] = w
    return chars, lengths


@pytest.fixture
def char_module():
    rng = numpy.random.default_rng(0)
    module = CharBiLSTM(32, 32)
    with torch.no_grad():  # seeded weights, without touching torch's global RNG
        for p in module.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.6, 0.6, p.shape).astype("float32")))
    return module


def test_blis_gemm_rows_do_not_depend_on_the_other_rows():
    """What the design rests on: a row of thinc's ``ops.gemm`` (blis) and of Maxout + LayerNorm is the same number
    whatever the other rows are (torch's and numpy's matrix products do not have this property for a few rows)."""
    ops = NumpyOps()
    rng = numpy.random.default_rng(1)
    for n_in, n_out in [(704, 384), (64, 256), (8, 32)]:
        W = rng.standard_normal((n_out, n_in)).astype("float32")
        X = rng.standard_normal((70, n_in)).astype("float32")
        alone = numpy.concatenate([ops.gemm(X[i : i + 1], W, trans2=True) for i in range(len(X))])
        for m in (1, 2, 3, 4, 5, 16, 17, 70):
            assert numpy.array_equal(ops.gemm(X[:m], W, trans2=True), alone[:m])
    mix = Maxout(16, 40, nP=3, dropout=0.0, normalize=True).initialize()
    X = rng.standard_normal((50, 40)).astype("float32")
    assert numpy.array_equal(mix.predict(X), numpy.concatenate([mix.predict(X[i : i + 1]) for i in range(50)]))


def test_numpy_char_bilstm_is_batch_independent_and_matches_torch(char_module):
    ops = NumpyOps()
    rng = random.Random(0)
    words = random_words(rng, 300)
    alone = numpy.concatenate([char_bilstm_predict(ops, char_module, *char_batch([w])) for w in words])
    assert alone.dtype == numpy.float32 and alone.shape == (300, 64)
    for _ in range(30):
        picked = rng.sample(range(len(words)), rng.randint(1, 60))
        got = char_bilstm_predict(ops, char_module, *char_batch([words[i] for i in picked]))
        assert numpy.array_equal(got, alone[picked])
    chars, lengths = char_batch(words)
    with torch.inference_mode():
        expected = char_module(torch.from_numpy(chars), torch.from_numpy(lengths), torch.arange(len(words))).numpy()
    numpy.testing.assert_allclose(alone, expected, atol=1e-5)  # the same function, rounded differently
    assert N_CHAR_IDS == char_module.embed.num_embeddings


def test_numpy_char_bilstm_follows_parameter_changes(char_module):
    ops = NumpyOps()
    chars, lengths = char_batch(random_words(random.Random(1), 20))
    before = char_bilstm_predict(ops, char_module, chars, lengths)
    data = char_module.lstm.weight_hh_l0.data.numpy()
    data += 0.1  # in place, as thinc's optimizers write into the tensor's memory
    after = char_bilstm_predict(ops, char_module, chars, lengths)
    with torch.inference_mode():
        expected = char_module(torch.from_numpy(chars), torch.from_numpy(lengths), torch.arange(len(chars))).numpy()
    assert not numpy.array_equal(before, after)
    numpy.testing.assert_allclose(after, expected, atol=1e-5)


@pytest.fixture
def nlp_v1(trained_single):
    embed_module.clear_row_cache()
    return spacy.load(trained_single, config=V1)  # the fixture's weights in the v1 architecture


@pytest.fixture
def nlp_v2(trained_single):
    embed_module.clear_row_cache()
    return spacy.load(trained_single, config=V2)  # the shipped configs' architecture (same weights as v1)


def embed_of(nlp):
    return nlp.get_pipe("tok2vec").model.layers[0]


def test_auto_mode_caches_whole_rows_for_v2_only(nlp_v1, nlp_v2):
    assert embed_module.ROW_CACHE == "auto"
    assert row_cache_mode(embed_of(nlp_v2)) == "rows"
    assert row_cache_mode(embed_of(nlp_v1)) == "features"


def test_v2_cached_rows_equal_the_uncached_path_bit_for_bit(nlp_v2, monkeypatch):
    texts = titles()
    monkeypatch.setattr(embed_module, "ROW_CACHE", "off")  # the thinc layers end to end, nothing cached
    expected_1 = [ents(nlp_v2(t)) for t in texts]
    expected_64 = [ents(d) for d in nlp_v2.pipe(texts, batch_size=64)]
    for mode in ("auto", "features", "rows"):
        monkeypatch.setattr(embed_module, "ROW_CACHE", mode)
        embed_module.clear_row_cache()
        for _ in range(2):  # the cache fills as it goes, then every token is a hit
            assert [ents(nlp_v2(t)) for t in texts] == expected_1
            assert [ents(d) for d in nlp_v2.pipe(texts, batch_size=64)] == expected_64


def test_v2_rows_are_the_same_in_any_batch(nlp_v2, monkeypatch):
    """The embedding rows of a doc do not depend on the other docs of the batch (the word BiLSTM and the CRF
    still may: torch's packed batches round differently from one doc)."""
    monkeypatch.setattr(embed_module, "ROW_CACHE", "off")
    docs = [nlp_v2.make_doc(t) for t in titles() if t.strip()]
    embed = embed_of(nlp_v2)
    alone = [embed.predict([d])[0] for d in docs]
    for got, exp in zip(embed.predict(docs), alone):
        assert numpy.array_equal(got, exp)


def test_v1_weights_in_v2_give_the_same_predictions(nlp_v1, nlp_v2):
    texts = titles()
    for v1, v2 in zip(nlp_v1.pipe(texts, batch_size=1), nlp_v2.pipe(texts, batch_size=1)):
        assert [e[:3] for e in ents(v1)] == [e[:3] for e in ents(v2)]
        assert all(abs(a[3] - b[3]) <= 1e-4 for a, b in zip(ents(v1), ents(v2)))


def test_v2_cache_after_training_and_saving(nlp_v2, data_dir, tmp_path, monkeypatch):
    from spacy.tokens import DocBin
    from spacy.training import Example

    text = "Lavazza dark espresso , 12 oz"
    docs = list(DocBin().from_disk(data_dir / "coffee" / "train.spacy").get_docs(nlp_v2.vocab))[:20]
    examples = [Example(nlp_v2.make_doc(d.text), d) for d in docs]
    nlp_v2(text)
    optimizer = nlp_v2.resume_training()
    for _ in range(3):
        nlp_v2.update(examples, sgd=optimizer)  # torch's LSTM in training, as v1
    trained = ents(nlp_v2(text))
    monkeypatch.setattr(embed_module, "ROW_CACHE", "off")
    assert ents(nlp_v2(text)) == trained  # no stale rows, no stale numpy LSTM weights
    nlp_v2.to_disk(tmp_path / "v2")
    monkeypatch.setattr(embed_module, "ROW_CACHE", "auto")
    reloaded = spacy.load(tmp_path / "v2")
    assert row_cache_mode(embed_of(reloaded)) == "rows"
    assert ents(reloaded(text)) == trained
