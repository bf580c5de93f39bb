"""Issue 13: the coupling in training: all of L in the batch, LazyAdam, the compared score, balanced batches,
per-vertical checkpoints, low-resource subsamples and the sweep's bad input."""
import json
import random
import sys
from collections import Counter
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin
from thinc.api import Optimizer
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.evaluation.evaluate import evaluate_pipeline
from spacy_mtlave.ml.compared_scores import transform_scores
from spacy_mtlave.ml.crf import CRF
from spacy_mtlave.ml.optimizers import LazyAdam
from spacy_mtlave.ml.shortlist import build_shortlist
from spacy_mtlave.training.batchers import create_vertical_batcher_v2
from spacy_mtlave.training.checkpoints import VerticalCheckpoints, restore_checkpoint
from spacy_mtlave.training.subsample import subsample_corpus
from spacy_mtlave.training.train import train_pair
from spacy_mtlave.vertical import get_vertical

from ..helpers import TINY, joint_nlp, train_examples

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_lazy_adam_leaves_rows_without_gradient_alone_and_is_adam_elsewhere():
    rng = numpy.random.RandomState(0)
    lazy, dense = LazyAdam(0.01, use_averages=False), Optimizer(0.01, use_averages=False)
    W = rng.randn(4, 3).astype("float32")
    Wl, Wd = W.copy(), W.copy()
    for step in range(5):  # every row touched: identical to thinc's Adam
        g = rng.randn(4, 3).astype("float32")
        Wl, _ = lazy(("x", "W"), Wl, g.copy())
        Wd, _ = dense(("x", "W"), Wd, g.copy())
    numpy.testing.assert_allclose(Wl, Wd, rtol=1e-6)
    kept_row, kept_m1 = Wl[2].copy(), lazy.mom1[("x", "W")].reshape(4, 3)[2].copy()
    for step in range(4):  # row 2 gets no gradient for four steps: it keeps its value and its moments
        g = rng.randn(4, 3).astype("float32")
        g[2] = 0
        Wl, _ = lazy(("x", "W"), Wl, g.copy())
        Wd, _ = dense(("x", "W"), Wd, g.copy())
    numpy.testing.assert_array_equal(Wl[2], kept_row)
    numpy.testing.assert_array_equal(lazy.mom1[("x", "W")].reshape(4, 3)[2], kept_m1)
    assert not numpy.array_equal(Wd[2], kept_row)  # dense Adam drifts by momentum
    b = numpy.ones(3, dtype="float32")
    b2, _ = lazy(("x", "b"), b.copy(), numpy.zeros(3, dtype="float32"))
    numpy.testing.assert_array_equal(b2, b)
    assert ("x", "b") not in lazy.mom1 and lazy.nr_update[("x", "b")] == 0


def test_symmetric_shortlist_is_the_union_of_both_directions():
    rng = numpy.random.RandomState(0)
    U1, U2 = rng.randn(30, 4), rng.randn(25, 4)
    shortlist = build_shortlist(U1, U2, 0.2, top_k=3)
    sym = shortlist.symmetric()
    union = set(zip(*shortlist.pairs()))
    from_12 = {(c1, int(c2)) for c1 in range(sym.n1) for c2 in sym.partners_12[c1][0]}
    from_21 = {(int(c1), c2) for c2 in range(sym.n2) for c1 in sym.partners_21[c2][0]}
    assert from_12 == from_21 == {(int(a), int(b)) for a, b in union}
    assert max(sym.partner_counts("12")) > 3  # the union can exceed top_k
    for c1 in range(sym.n1):
        sims = sym.partners_12[c1][1]
        assert (numpy.diff(sims) <= 0).all()


def test_an_update_couples_every_pair_of_L_in_the_batch(data_dir):
    state = joint_nlp(data_dir).get_pipe("coupling").states["0-1"]
    batch_docs = [numpy.array([0, 3, 5]), numpy.array([1, 2, 7, 9])]
    (a12, col12), (a21, col21) = state._all_pairs(batch_docs, cap=None)
    got_12 = {(int(a), int(state.partners[0][int(a)][0][c])) for a, c in zip(a12, col12)}
    got_21 = {(int(state.partners[1][int(a)][0][c]), int(a)) for a, c in zip(a21, col21)}
    c1, c2 = state.shortlist.pairs()
    docs1, docs2 = state.sides[0].index[:, 0], state.sides[1].index[:, 0]
    expected = {(int(a), int(b)) for a, b in zip(c1, c2) if docs1[a] in batch_docs[0] and docs2[b] in batch_docs[1]}
    assert expected and got_12 == got_21 == expected
    capped = state._all_pairs(batch_docs, cap=5)
    assert len(capped[0][0]) == 5


def test_v3_loss_is_the_mean_over_the_batch_pairs_of_all_four_terms(data_dir):
    """The coupled step's loss against a brute-force sum of CCE + CCE' + LCE + LCE' over the pairs of L in the
    batch, each attention normalised over the context's whole partner set in L."""
    weight = 3.0
    nlp = joint_nlp(data_dir, **{"components.coupling.weight": weight})
    coupling = nlp.get_pipe("coupling")
    state, module = coupling.states["0-1"], coupling.module
    examples = train_examples(nlp, data_dir)
    batch = examples[:6] + examples[60:66]
    docs = [eg.predicted for eg in batch]
    tokvecs = nlp.get_pipe("tok2vec").model.predict(docs)
    settings = dict(coupling.settings, batch_size=None)
    loss, _ = state.step(coupling.model, settings, batch, tokvecs)
    scores = [nlp.get_pipe(t).model.get_ref("emitter").predict(tokvecs[i * 6:(i + 1) * 6]) for i, t in enumerate(("tagger_v1", "tagger_v2"))]
    ids = [[state.sides[s].doc_ids[eg.reference.text] for eg in batch[s * 6:(s + 1) * 6]] for s in (0, 1)]

    def score(side, ctx):
        doc, tok = state.sides[side].index[ctx]
        return float(scores[side][ids[side].index(doc)][tok, state.sides[side].tags[ctx]])

    def attention(direction, anchor, partner):
        a_side, p_side = (0, 1) if direction == 0 else (1, 0)
        partners = state.partners[direction][anchor][0]
        A, P = state.sides[a_side], state.sides[p_side]
        a = (module.a1 if direction == 0 else module.a2).detach().numpy()
        vectors = [module.label_vectors(1).detach().numpy(), module.label_vectors(2).detach().numpy()]
        context = numpy.array([A.U[anchor] @ (a * P.U[p]) for p in partners])
        label = numpy.array([vectors[a_side][A.tags[anchor]] @ vectors[p_side][P.tags[p]] for p in partners])
        where = list(partners).index(partner)
        return sum(numpy.exp(x[where] - x.max()) / numpy.exp(x - x.max()).sum() for x in (context, label))

    total, n = 0.0, 0
    for c1, c2 in zip(*state.shortlist.pairs()):
        if state.sides[0].index[c1, 0] in ids[0] and state.sides[1].index[c2, 0] in ids[1]:
            diff = abs(score(0, c1) - score(1, c2))
            total += (attention(0, c1, c2) + attention(1, c2, c1)) * diff
            n += 1
    assert n > 10
    assert loss == pytest.approx(weight * total / n, rel=1e-4)


@pytest.mark.parametrize("kind", ["log_softmax", "marginal"])
def test_compared_scores_backprop_matches_finite_differences(kind):
    torch.manual_seed(0)
    crf = CRF(4).double()
    lengths = [3, 1, 4]
    emissions = numpy.random.RandomState(0).randn(sum(lengths), 4)
    weights = numpy.random.RandomState(1).randn(sum(lengths), 4)
    out, backprop = transform_scores(kind, emissions, lengths, crf)
    if kind == "marginal":
        numpy.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-9)
    else:
        numpy.testing.assert_allclose(numpy.exp(out).sum(axis=1), 1.0, rtol=1e-9)
    grad = backprop(weights)
    eps = 1e-6
    for i, j in [(0, 0), (2, 3), (3, 1), (5, 2), (7, 0)]:
        plus, minus = emissions.copy(), emissions.copy()
        plus[i, j] += eps
        minus[i, j] -= eps
        numeric = ((transform_scores(kind, plus, lengths, crf)[0] - transform_scores(kind, minus, lengths, crf)[0]) * weights).sum() / (2 * eps)
        assert grad[i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    same, identity = transform_scores("emission", emissions, lengths)
    assert same is emissions and identity(weights) is weights


def test_an_unknown_score_is_a_config_error_naming_the_allowed_values(data_dir):
    from confection import ConfigValidationError

    with pytest.raises(ConfigValidationError) as err:
        joint_nlp(data_dir, **{"components.coupling.model.score": "cosine"})
    assert "emission" in str(err.value) and "marginal" in str(err.value)


@pytest.mark.parametrize("score", ["log_softmax", "marginal"])
def test_training_with_each_score_lowers_the_loss(data_dir, score):
    nlp = joint_nlp(data_dir, **{"components.coupling.model.score": score, "components.coupling.weight": 10.0})
    examples = train_examples(nlp, data_dir)
    sgd = nlp.create_optimizer()
    batch = examples[:20] + examples[60:80]
    first = [nlp.update(batch, sgd=sgd)["coupling"]]
    for _ in range(4):
        first.append(nlp.update(batch, sgd=sgd)["coupling"])
    assert all(numpy.isfinite(first)) and first[0] > 0


def test_balanced_batcher_gives_every_vertical_the_same_number_of_updates(data_dir):
    examples = train_examples(spacy.blank("en"), data_dir)
    examples = examples[:50] + examples[60:75]  # 50 Coffee, 15 Tea
    random.seed(0)
    batches = list(create_vertical_batcher_v2(size=20)(examples))
    counts = [Counter(get_vertical(eg.reference) for eg in b) for b in batches]
    assert [c["Coffee"] for c in counts] == [20, 20, 20] and [c["Tea"] for c in counts] == [15, 15, 15]
    used = Counter(id(eg) for b in batches for eg in b)
    assert set(used) == {id(eg) for eg in examples}  # every example at least once per epoch
    assert sorted(Counter(used[id(eg)] for eg in examples[:50]).items()) == [(1, 40), (2, 10)]  # the last batch is topped up
    assert all(max(Counter(id(eg) for eg in b).values()) == 1 for b in batches)


def test_checkpoints_keep_the_raw_and_the_smoothed_best_and_restore_them(data_dir, tmp_path):
    nlp = joint_nlp(data_dir)
    tracker = VerticalCheckpoints(nlp, window=3)
    emitter = nlp.get_pipe("tagger_v1").model.get_ref("emitter").layers[0]
    raw = [0.50, 0.60, 0.90, 0.55, 0.80, 0.82, 0.81, 0.60]  # one lucky evaluation at step 30
    weights = {}
    for i, value in enumerate(raw):
        emitter.set_param("W", emitter.get_param("W") + 1.0)  # the weights change between evaluations
        weights[10 * (i + 1)] = numpy.array(emitter.get_param("W"))
        tracker.observe({"step": 10 * (i + 1), "epoch": i, "other_scores": {"ave_macro_f_tagger_v1": value, "ave_macro_f_tagger_v2": 0.5}})
    tracker.write(tmp_path, "smoothed")
    selection = json.loads((tmp_path / "checkpoints" / "selection.json").read_text())
    assert selection["chosen"]["tagger_v1"]["raw"]["step"] == 30
    assert selection["chosen"]["tagger_v1"]["smoothed"]["step"] == 70  # mean(0.80, 0.82, 0.81) beats mean(0.6, 0.9, 0.55)
    assert selection["chosen"]["tagger_v2"]["raw"]["step"] == 10  # ties keep the earlier checkpoint
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "tagger_v1" / "smoothed").iterdir()) == ["tagger_v1.bin", "tok2vec.bin"]
    restore_checkpoint(nlp, tmp_path / "checkpoints" / "tagger_v1" / "smoothed")
    numpy.testing.assert_array_equal(nlp.get_pipe("tagger_v1").model.get_ref("emitter").layers[0].get_param("W"), weights[70])
    with pytest.raises(ValueError, match="window"):
        VerticalCheckpoints(nlp, window=0)


@pytest.mark.slow
def test_train_pair_exports_each_verticals_own_best_checkpoint(data_dir, tmp_path):
    overrides = dict(TINY, **{"training.eval_frequency": 5})
    outputs = train_pair(data_dir / "coffee", data_dir / "tea", tmp_path / "pair", vectors=data_dir / "vectors", max_steps=40, overrides=overrides)
    selection = json.loads((tmp_path / "pair" / "joint" / "checkpoints" / "selection.json").read_text())
    assert selection["select"] == "smoothed" and len(selection["history"]["tagger_v1"]) >= 8
    for i, (vertical, path) in enumerate(outputs.items(), start=1):
        chosen = selection["chosen"][f"tagger_v{i}"]["smoothed"]
        dev = evaluate_pipeline(path, data_dir / vertical.lower() / "dev.spacy")
        assert dev["macro_f1"] == pytest.approx(chosen["raw"], abs=1e-6)
    usage = json.loads((tmp_path / "pair" / "joint" / "coupling_usage.json").read_text())["Coffee + Tea"]
    assert usage["updates"] >= 40 and usage["pairs_per_update"]["mean"] > 30 and usage["uses_per_pair"]["mean"] > 0


def test_subsample_keeps_a_fixed_nested_fraction(data_dir, tmp_path):
    small = subsample_corpus(data_dir / "coffee", tmp_path / "f20", 0.2, seed=0)
    large = subsample_corpus(data_dir / "coffee", tmp_path / "f50", 0.5, seed=0)
    assert small == {"kept": 12, "of": 60} and large == {"kept": 30, "of": 60}
    vocab = spacy.blank("en").vocab
    texts = lambda p: [d.text for d in DocBin().from_disk(p).get_docs(vocab)]  # noqa: E731
    assert set(texts(tmp_path / "f20" / "train.spacy")) <= set(texts(tmp_path / "f50" / "train.spacy"))
    assert texts(tmp_path / "f20" / "dev.spacy") == texts(data_dir / "coffee" / "dev.spacy")
    assert texts(tmp_path / "f20" / "test.spacy") == texts(data_dir / "coffee" / "test.spacy")
    for bad in ("0", "1.5", "-0.2"):
        result = CliRunner().invoke(app, ["subsample", str(data_dir / "coffee"), str(tmp_path / "bad"), "--fraction", bad])
        assert result.exit_code == 2 and "--fraction must be in (0, 1]" in result.output and "Traceback" not in result.output


def test_a_sweep_that_finds_no_run_is_a_one_line_error(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import coupling_sweep
    finally:
        sys.path.remove(str(BENCHMARKS))
    with pytest.raises(SystemExit) as err:
        coupling_sweep.table(tmp_path, [0], ["none", "w10"])
    assert str(err.value).startswith("error: no finished sweep run") and "\n" not in str(err.value)
