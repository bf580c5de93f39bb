"""The CRF's uncertainty (spacy_mtlave.active.uncertainty) against brute-force enumeration of every tag sequence."""
import itertools
import math

import numpy as np
import pytest
import torch

from spacy_mtlave.active.dedupe import EXACT, NEAR, DuplicateFilter, normalise
from spacy_mtlave.active.select import rank_and_choose
from spacy_mtlave.active.uncertainty import Uncertainty, crf_uncertainty
from spacy_mtlave.bio import bio_tags, spans_from_bio
from spacy_mtlave.ml.crf import CRF


def tiny_crf(n_tags: int, seed: int, scale: float, bio=None) -> CRF:
    gen = torch.Generator().manual_seed(seed)
    crf = CRF(n_tags)
    with torch.no_grad():
        for param in (crf.transitions, crf.start, crf.end):
            param.copy_(torch.randn(param.shape, generator=gen) * scale)
    if bio is not None:
        crf.set_bio_constraints(bio)
    return crf


def enumerate_paths(crf: CRF, em: np.ndarray):
    """{path: probability} over all T**n sequences of one row (float64), and the allowed ones."""
    t, s, e = (p.detach().numpy().astype(np.float64) for p in (crf.transitions, crf.start, crf.end))
    n, T = em.shape
    scores = {}
    for path in itertools.product(range(T), repeat=n):
        score = s[path[0]] + e[path[-1]] + sum(em[i, y] for i, y in enumerate(path)) + sum(t[a, b] for a, b in zip(path, path[1:]))
        scores[path] = score
    top = max(scores.values())
    z = top + math.log(sum(math.exp(v - top) for v in scores.values()))
    allowed = {p for p in scores if bool(crf.allowed_start[p[0]]) and all(bool(crf.allowed[a, b]) for a, b in zip(p, p[1:]))}
    return {p: math.exp(v - z) for p, v in scores.items()}, scores, allowed


@pytest.mark.parametrize("seed,lengths,scale,constrained", [(0, [1, 3, 4], 1.0, True), (1, [4, 2], 3.0, True), (2, [3, 3, 1], 0.5, False), (3, [5], 2.0, True)])
def test_path_probability_and_entropy_match_brute_force(seed, lengths, scale, constrained):
    tags = bio_tags(["A", "B"])  # 5 tags: O, B-A, I-A, B-B, I-B
    crf = tiny_crf(len(tags), seed, scale, tags)
    rng = np.random.RandomState(seed)
    width = max(lengths)
    em = (rng.normal(size=(len(lengths), width, len(tags))) * scale).astype(np.float32)
    mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
    result = crf_uncertainty(crf, em, mask, constrained=constrained)
    for row, n in enumerate(lengths):
        probs, scores, allowed = enumerate_paths(crf, em[row, :n].astype(np.float64))
        candidates = allowed if constrained else set(probs)
        best = max(candidates, key=lambda p: scores[p])
        u = result[row]
        assert tuple(u.path) == best
        assert u.path_probability == pytest.approx(probs[best], rel=1e-4, abs=1e-7)
        assert u.least_confidence == pytest.approx(1 - probs[best], abs=1e-5)
        assert u.neg_log_probability == pytest.approx(-math.log(probs[best]), rel=1e-4, abs=1e-5)
        marginals = np.zeros((n, len(tags)))
        for path, p in probs.items():
            marginals[np.arange(n), list(path)] += p
        entropy = float(np.mean([-sum(q * math.log(q) for q in marginals[i] if q > 0) for i in range(n)]))
        assert u.entropy == pytest.approx(entropy, rel=1e-4, abs=1e-6)


def test_empty_rows_are_certain():
    crf = tiny_crf(3, 0, 1.0)
    em = np.zeros((2, 2, 3), dtype=np.float32)
    mask = np.array([[True, True], [False, False]])
    result = crf_uncertainty(crf, em, mask)
    assert result[1].path == [] and result[1].path_probability == 1.0 and result[1].entropy == 0.0
    assert 0 < result[0].path_probability < 1


def test_a_flat_row_is_more_uncertain_than_a_peaked_one():
    crf = tiny_crf(3, 0, 0.0)  # all transitions 0
    em = np.zeros((2, 4, 3), dtype=np.float32)
    em[0, :, 1] = 10.0  # peaked: tag 1 everywhere
    mask = np.ones((2, 4), dtype=bool)
    peaked, flat = crf_uncertainty(crf, em, mask, constrained=False)
    assert flat.path_probability == pytest.approx(1 / 3 ** 4, rel=1e-5)
    assert flat.entropy == pytest.approx(math.log(3), rel=1e-5)
    assert peaked.least_confidence < flat.least_confidence and peaked.entropy < flat.entropy
    for strategy in ("least-confidence", "entropy"):
        chosen, _ = rank_and_choose(["peaked title", "flat other words"], 1, strategy, [peaked.score(strategy), flat.score(strategy)])
        assert chosen == [1]


def test_long_texts_do_not_tie_on_least_confidence():
    """p(y*) of a long title rounds to 0; the ranking key -log p still orders them."""
    a = Uncertainty([0] * 80, 0.0, 1.0, 0.5, 900.0)
    b = Uncertainty([0] * 80, 0.0, 1.0, 0.5, 1200.0)
    chosen, _ = rank_and_choose(["a title", "b other"], 2, "least-confidence", [a.score("least-confidence"), b.score("least-confidence")])
    assert chosen == [1, 0]


def test_duplicates_are_skipped_by_the_rule():
    assert normalise("Folgers Classic Roast, 12 oz") == normalise("folgers classic roast 24 OZ") == "folgers classic roast 0 oz"
    seen = DuplicateFilter(0.8)
    seen.add("Folgers Classic Roast Ground Coffee Medium Roast 12 oz Canister")
    assert seen.check("FOLGERS classic roast ground coffee, medium roast, 24 oz canister") == EXACT
    assert seen.check("Folgers Classic Roast Ground Coffee Dark Roast 12 oz Canister") == NEAR  # 7 of 9 words
    assert seen.check("Lavazza Super Crema Whole Bean Coffee 2.2 lb") is None
    texts = ["Acme Tea Green 20 count", "acme tea green 40 count", "Acme Tea Green Decaf 20 count", "Yogi Tea Lemon 16 bags"]
    scores = [4.0, 3.0, 2.0, 1.0]
    chosen, skipped = rank_and_choose(texts, 3, "least-confidence", scores)  # Decaf: 5 of 6 words shared, 0.83
    assert chosen == [0, 3] and skipped == {EXACT: 1, NEAR: 1}
    chosen, skipped = rank_and_choose(texts, 3, "least-confidence", scores, near_duplicate=0.9)
    assert chosen == [0, 2, 3] and skipped == {EXACT: 1}
    chosen, _ = rank_and_choose(texts, 3, "least-confidence", scores, fill=True)
    assert chosen == [0, 3, 1]
    chosen, skipped = rank_and_choose(texts, 4, "random", seed=3, known=["ACME tea green 1 count"])
    assert set(chosen) == {3} and skipped == {EXACT: 2, NEAR: 1}


def test_the_tagger_method_matches_the_module(trained_single):
    import spacy

    from spacy_mtlave.active.uncertainty import tagger_uncertainty

    nlp = spacy.load(trained_single)
    docs = list(nlp.pipe(["Acme dark coffee , 12 oz", "Yogi green tea bags , 20 count", ""]))
    tagger = nlp.get_pipe("ave_tagger")
    got, expected = tagger.sequence_uncertainty(docs), tagger_uncertainty(tagger, docs)
    assert got == expected
    assert got[2].path == [] and got[2].path_probability == 1.0
    for doc, u in zip(docs[:2], got):
        assert len(u.path) == len(doc) and 0 < u.path_probability <= 1
        tags = [tagger.tags[t] for t in u.path]  # the path is the one the tagger wrote
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [(s, e, label) for s, e, label in spans_from_bio(tags)]
