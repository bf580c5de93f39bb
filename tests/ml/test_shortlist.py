import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc
from spacy.vocab import Vocab

from spacy_mtlave.ml.shortlist import Shortlist, build_shortlist, context_embeddings

# Rows whose cosine similarities are exact in float32 whatever the summation order: zero, +-one-hot, and
# (+-0.5, +-0.5, +-0.5, +-0.5), times a power of two. All similarities are multiples of 0.25, so ties are common.
PATTERNS = np.concatenate(
    [
        np.zeros((1, 4)),
        np.eye(4),
        -np.eye(4),
        0.5 * np.array([[1 - 2 * ((p >> i) & 1) for i in range(4)] for p in range(16)]),
    ]
).astype(np.float32)
THRESHOLDS = [-1.0, -0.6, -0.25, 0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]


def exact_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    scales = np.array([0.25, 1.0, 8.0], dtype=np.float32)[rng.integers(0, 3, n)]
    return PATTERNS[rng.integers(0, len(PATTERNS), n)] * scales[:, None]


def reference(U1, U2, thresh, top_k):
    """Brute force on the full similarity matrix: (partners 1->2, partners 2->1, best similarity), each partner list
    [(index, sim)] sorted by decreasing similarity then index."""

    def unit(U):
        U = np.asarray(U, dtype=np.float32)
        norms = np.linalg.norm(U, axis=1)
        return np.divide(U, norms[:, None], out=np.zeros_like(U), where=norms[:, None] > 0), norms > 0

    X1, ok1 = unit(U1)
    X2, ok2 = unit(U2)
    S = X1 @ X2.T
    valid = ok1[:, None] & ok2[None, :]
    best = float(S[valid].max()) if valid.any() else -math.inf

    def lists(S, valid):
        result = []
        for row, ok in zip(S, valid):
            js = [j for j in range(len(row)) if ok[j] and row[j] > np.float32(thresh)]
            js.sort(key=lambda j: (-row[j], j))
            result.append([(j, float(row[j])) for j in js[:top_k]])
        return result

    return lists(S, valid), lists(S.T, valid.T), best


def as_lists(partners):
    return [[(int(j), float(s)) for j, s in zip(*partners[c])] for c in range(len(partners))]


def union_size(lists_12, lists_21):
    pairs = {(c, j) for c, row in enumerate(lists_12) for j, _ in row}
    return len(pairs | {(j, c) for c, row in enumerate(lists_21) for j, _ in row})


@settings(max_examples=300, deadline=None)
@given(
    n1=st.integers(1, 40),
    n2=st.integers(1, 40),
    block_fraction=st.floats(0.0, 1.0),
    top_k=st.one_of(st.none(), st.integers(1, 6)),
    thresh=st.sampled_from(THRESHOLDS),
    seed=st.integers(0, 2**32 - 1),
)
def test_blocked_equals_brute_force_with_ties(n1, n2, block_fraction, top_k, thresh, seed):
    rng = np.random.default_rng(seed)
    U1, U2 = exact_rows(rng, n1), exact_rows(rng, n2)
    block_size = max(1, int(block_fraction * (n1 - 1)))  # smaller than n1 whenever n1 > 1
    shortlist = build_shortlist(U1, U2, thresh, top_k=top_k, block_size=block_size)
    expected_12, expected_21, best = reference(U1, U2, thresh, top_k)
    assert as_lists(shortlist.partners_12) == expected_12
    assert as_lists(shortlist.partners_21) == expected_21
    assert shortlist.best_similarity == best
    assert shortlist.n_pairs() == union_size(expected_12, expected_21)
    assert (shortlist.n1, shortlist.n2, shortlist.top_k) == (n1, n2, top_k)


@pytest.mark.parametrize("top_k", [None, 1, 7, 40])
@pytest.mark.parametrize("thresh", [-0.2, 0.3, 0.7])
def test_blocked_equals_brute_force_on_gaussian_vectors(top_k, thresh):
    rng = np.random.default_rng(7)
    U1 = rng.standard_normal((300, 6)).astype(np.float32)
    U2 = rng.standard_normal((257, 6)).astype(np.float32)
    U1[::17] = 0.0
    shortlist = build_shortlist(U1, U2, thresh, top_k=top_k, block_size=64)
    expected_12, expected_21, best = reference(U1, U2, thresh, top_k)
    for partners, expected in ((shortlist.partners_12, expected_12), (shortlist.partners_21, expected_21)):
        got = as_lists(partners)
        assert [[j for j, _ in row] for row in got] == [[j for j, _ in row] for row in expected]
        np.testing.assert_allclose(partners.sims, [s for row in expected for _, s in row], atol=1e-6)
    assert shortlist.best_similarity == pytest.approx(best, abs=1e-6)


def test_without_top_k_21_is_the_transpose_of_12():
    rng = np.random.default_rng(3)
    shortlist = build_shortlist(rng.standard_normal((50, 5)), rng.standard_normal((60, 5)), 0.2, block_size=8)
    forward = {(c, int(j)) for c in range(50) for j in shortlist.partners_12[c][0]}
    backward = {(int(j), c) for c in range(60) for j in shortlist.partners_21[c][0]}
    assert forward == backward and len(forward) == shortlist.n_pairs() > 0
    c1, c2 = shortlist.pairs()
    assert set(zip(c1.tolist(), c2.tolist())) == forward


def test_zero_vectors_never_match_even_below_zero_threshold():
    U1 = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    U2 = np.array([[0.0, 0.0], [-1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    shortlist = build_shortlist(U1, U2, -2.0, block_size=1)
    assert as_lists(shortlist.partners_12) == [[(1, -1.0)], [], [(1, 0.0)]]
    assert as_lists(shortlist.partners_21) == [[], [(2, 0.0), (0, -1.0)], []]
    assert shortlist.best_similarity == 0.0


def test_all_zero_inputs_give_empty_shortlist_and_no_best_similarity():
    shortlist = build_shortlist(np.zeros((3, 4)), np.ones((2, 4)), -2.0, top_k=2)
    assert shortlist.n_pairs() == 0 and shortlist.best_similarity == -math.inf
    assert shortlist.summary()["best_similarity"] is None
    assert shortlist.partner_counts("21").tolist() == [0, 0]


def test_threshold_above_every_similarity_leaves_l_empty_but_reports_best():
    rng = np.random.default_rng(0)
    U1, U2 = rng.standard_normal((30, 5)), rng.standard_normal((20, 5))
    _, _, best = reference(U1, U2, 0.0, None)
    for top_k in (None, 3):
        shortlist = build_shortlist(U1, U2, 0.9999, top_k=top_k, block_size=7)
        assert shortlist.n_pairs() == 0
        assert shortlist.best_similarity == pytest.approx(best, abs=1e-6) and best < 0.9999
        summary = shortlist.summary()
        assert summary["n_pairs"] == 0 and summary["partners_12"]["n_with_partner"] == 0
        assert summary["partners_21"]["max"] == 0.0


def test_summary_reports_partner_count_distribution():
    # vertical 1: a, a, b, zero; vertical 2: a, a, a, b  (a, b orthogonal), thresh 0.5, no top_k
    a, b = [1.0, 0.0], [0.0, 1.0]
    shortlist = build_shortlist(np.array([a, a, b, [0, 0]]), np.array([a, a, a, b]), 0.5, block_size=2)
    assert shortlist.partner_counts("12").tolist() == [3, 3, 1, 0]
    assert shortlist.partner_counts("21").tolist() == [2, 2, 2, 1]
    summary = shortlist.summary()
    stats = ("min", "median", "mean", "p90", "max", "n_with_partner")
    assert summary["partners_12"] == dict(zip(stats, [0.0, 2.0, 1.75, 3.0, 3.0, 3]))
    assert summary["partners_21"] == dict(zip(stats, [1.0, 2.0, 1.75, 2.0, 2.0, 4]))
    assert summary["n_pairs"] == 7 and summary["n1"] == 4 and summary["n2"] == 4
    assert summary["thresh"] == 0.5 and summary["top_k"] is None and summary["best_similarity"] == 1.0
    assert summary["build_seconds"] == shortlist.build_seconds >= 0.0
    with pytest.raises(ValueError, match="direction"):
        shortlist.partner_counts("1")


def test_top_k_directions_differ_and_union_counts_each_pair_once():
    # every context of vertical 1 is closest to context 0 of vertical 2; top_k=1
    U1 = np.array([[1.0, 0.0], [1.0, 0.1], [1.0, 0.2]])
    U2 = np.array([[1.0, 0.0], [1.0, 0.5]])
    shortlist = build_shortlist(U1, U2, 0.5, top_k=1, block_size=2)
    assert [list(shortlist.partners_12[c][0]) for c in range(3)] == [[0], [0], [0]]
    assert [list(shortlist.partners_21[c][0]) for c in range(2)] == [[0], [2]]
    assert shortlist.n_pairs() == 4  # (0,0) (1,0) (2,0) from 1->2, plus (2,1) from 2->1


def test_to_disk_from_disk_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    for top_k in (None, 2):
        shortlist = build_shortlist(rng.standard_normal((20, 3)), rng.standard_normal((15, 3)), 0.5, top_k=top_k)
        path = tmp_path / f"L_{top_k}.bin"
        shortlist.to_disk(path)
        loaded = Shortlist.from_disk(path)
        assert loaded.summary() == shortlist.summary()
        for direction in ("partners_12", "partners_21"):
            assert as_lists(getattr(loaded, direction)) == as_lists(getattr(shortlist, direction))


def test_build_shortlist_rejects_bad_input():
    U = np.ones((3, 4))
    with pytest.raises(ValueError, match="columns"):
        build_shortlist(U, np.ones((3, 5)), 0.5)
    with pytest.raises(ValueError, match="top_k"):
        build_shortlist(U, U, 0.5, top_k=0)
    with pytest.raises(ValueError, match="block_size"):
        build_shortlist(U, U, 0.5, block_size=0)
    with pytest.raises(ValueError, match="U2 contains NaN"):
        build_shortlist(U, np.full((2, 4), np.nan), 0.5)
    with pytest.raises(ValueError, match="U1 must be 2-dimensional"):
        build_shortlist(np.ones(4), U, 0.5)


@pytest.fixture
def vocab():
    vocab = Vocab()
    vocab.set_vector("coffee", np.array([1.0, 0.0, 0.0], dtype=np.float32))
    vocab.set_vector("tea", np.array([0.0, 2.0, 0.0], dtype=np.float32))
    vocab.set_vector("hot", np.array([0.0, 0.0, 4.0], dtype=np.float32))
    return vocab


def test_context_embeddings_window_mean_oov_and_lower_casing(vocab):
    docs = [
        Doc(vocab, words=["Hot", "Coffee", "xyz", "TEA"]),
        Doc(vocab, words=[]),
        Doc(vocab, words=["qqq", "zzz"]),
        Doc(vocab, words=["tea"]),
    ]
    coffee, tea, hot, zero = [1, 0, 0], [0, 2, 0], [0, 0, 4], [0, 0, 0]
    U, index = context_embeddings(docs, window=1)
    assert U.dtype == np.float32 and index.dtype == np.int32
    assert index.tolist() == [[0, 0], [0, 1], [0, 2], [0, 3], [2, 0], [2, 1], [3, 0]]
    expected = [
        np.mean([hot, coffee], axis=0),  # window clipped at the doc start
        np.mean([hot, coffee], axis=0),  # "xyz" is OOV: averaged over the two known words only
        np.mean([coffee, tea], axis=0),
        tea,  # clipped at the doc end, "xyz" ignored
        zero,  # all-OOV window
        zero,
        tea,  # a window never crosses into another doc
    ]
    np.testing.assert_allclose(U, np.array(expected, dtype=np.float32))


def test_context_embeddings_window_sizes(vocab):
    doc = Doc(vocab, words=["coffee", "tea", "hot", "zzz", "coffee"])
    U0, _ = context_embeddings([doc], window=0)
    np.testing.assert_allclose(U0, [[1, 0, 0], [0, 2, 0], [0, 0, 4], [0, 0, 0], [1, 0, 0]])
    U_all, _ = context_embeddings([doc], window=100)
    np.testing.assert_allclose(U_all, np.tile(np.array([[2 / 4, 2 / 4, 4 / 4]]), (5, 1)))
    with pytest.raises(ValueError, match="window"):
        context_embeddings([doc], window=-1)


def test_context_embeddings_rejects_a_vocab_without_vectors():
    with pytest.raises(ValueError, match="no word vectors"):
        context_embeddings([Doc(Vocab(), words=["coffee"])])
    with pytest.raises(ValueError, match="docs is empty"):
        context_embeddings([])
