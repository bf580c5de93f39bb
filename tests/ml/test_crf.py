import itertools
from typing import List, Optional, Tuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from spacy_mtlave.bio import bio_tags, spans_from_bio
from spacy_mtlave.ml.crf import CRF

torch.set_num_threads(1)


def make_case(
    n_tags: int, lengths: List[int], seed: int, scale: float, dtype=torch.float64
) -> Tuple[CRF, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A CRF with random parameters of magnitude ~`scale`, plus emissions,
    tags and a prefix mask for rows of the given lengths."""
    gen = torch.Generator().manual_seed(seed)
    crf = CRF(n_tags).to(dtype)
    with torch.no_grad():
        for param in (crf.transitions, crf.start, crf.end):
            param.copy_(torch.randn(param.shape, generator=gen, dtype=dtype) * scale)
    width = max(lengths)
    emissions = torch.randn(len(lengths), width, n_tags, generator=gen, dtype=dtype) * scale
    tags = torch.randint(0, n_tags, (len(lengths), width), generator=gen)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    return crf, emissions, tags, mask


def path_score(crf: CRF, emissions: torch.Tensor, path: Tuple[int, ...]) -> torch.Tensor:
    """Score of one path over the first len(path) rows of emissions [L, T]."""
    score = crf.start[path[0]] + crf.end[path[-1]]
    for i, tag in enumerate(path):
        score = score + emissions[i, tag]
        if i:
            score = score + crf.transitions[path[i - 1], tag]
    return score


def is_allowed(crf: CRF, path: Tuple[int, ...]) -> bool:
    return bool(crf.allowed_start[path[0]]) and all(
        bool(crf.allowed[a, b]) for a, b in zip(path, path[1:])
    )


def brute_force(crf: CRF, emissions: torch.Tensor, n: int):
    """All paths of length n for one row, with their scores."""
    paths = list(itertools.product(range(crf.n_tags), repeat=n))
    scores = torch.stack([path_score(crf, emissions, p) for p in paths])
    return paths, scores


cases = st.tuples(
    st.integers(1, 4),
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.booleans(),
    st.integers(0, 2**31 - 1),
    st.sampled_from([1.0, 3.0, 1000.0]),
)


def with_empty(lengths: List[int], empty: bool) -> List[int]:
    return lengths + [0] if empty else lengths


@settings(max_examples=200, deadline=None)
@given(cases)
def test_matches_brute_force(case):
    n_tags, lengths, empty, seed, scale = case
    lengths = with_empty(lengths, empty)
    crf, emissions, tags, mask = make_case(n_tags, lengths, seed, scale)
    gen = torch.Generator().manual_seed(seed + 1)
    crf.allowed.copy_(torch.rand(n_tags, n_tags, generator=gen) < 0.6)
    crf.allowed_start.copy_(torch.rand(n_tags, generator=gen) < 0.7)
    with torch.no_grad():
        log_z = crf.log_partition(emissions, mask)
        log_lik = crf.log_likelihood(emissions, tags, mask)
        marginals = crf.marginals(emissions, mask)
        free = crf.decode(emissions, mask, constrained=False)
        constrained = crf.decode(emissions, mask, constrained=True)
        for b, n in enumerate(lengths):
            assert len(free[b]) == len(constrained[b]) == n
            if n == 0:
                assert log_z[b] == 0 and log_lik[b] == 0
                assert torch.all(marginals[b] == 0)
                continue
            paths, scores = brute_force(crf, emissions[b], n)
            true_z = torch.logsumexp(scores, 0)
            tol = 1e-9 * max(1.0, scale)
            assert torch.allclose(log_z[b], true_z, rtol=1e-9, atol=tol)
            gold = path_score(crf, emissions[b], tuple(tags[b, :n].tolist()))
            assert torch.allclose(log_lik[b], gold - true_z, rtol=1e-9, atol=tol)
            assert torch.allclose(path_score(crf, emissions[b], tuple(free[b])), scores.max())
            allowed = torch.tensor([is_allowed(crf, p) for p in paths])
            if allowed.any():
                assert is_allowed(crf, tuple(constrained[b]))
                best = scores.masked_fill(~allowed, float("-inf")).max()
            else:
                best = scores.max()
            assert torch.allclose(path_score(crf, emissions[b], tuple(constrained[b])), best)
            probs = torch.softmax(scores, 0)
            expected = torch.zeros(n, n_tags, dtype=torch.float64)
            for p, prob in zip(paths, probs):
                expected[torch.arange(n), torch.tensor(p)] += prob
            assert torch.allclose(marginals[b, :n], expected, atol=1e-9)
            assert torch.all(marginals[b, n:] == 0)


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_gradcheck(scale):
    crf, emissions, tags, mask = make_case(3, [3, 1, 2, 0], seed=7, scale=scale)
    params = (crf.transitions.detach(), crf.start.detach(), crf.end.detach())

    def nll(emissions, transitions, start, end):
        state = {"transitions": transitions, "start": start, "end": end}
        return functional_call(crf, state, (emissions, tags, mask))

    inputs = tuple(t.clone().requires_grad_() for t in (emissions, *params))
    assert torch.autograd.gradcheck(nll, inputs)


def test_forward_is_negative_log_likelihood():
    crf, emissions, tags, mask = make_case(4, [5, 2], seed=3, scale=1.0)
    assert torch.equal(crf(emissions, tags, mask), -crf.log_likelihood(emissions, tags, mask))


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_float32_agrees_with_float64(scale):
    # scale 30 puts transition columns past the float32 fast-path limit
    crf, emissions, tags, mask = make_case(9, [20, 13, 1], seed=11, scale=scale)
    crf32 = CRF(9)
    crf32.load_state_dict({k: v.float() for k, v in crf.state_dict().items()})
    expected = crf.log_partition(emissions, mask).float()
    got = crf32.log_partition(emissions.float(), mask)
    assert torch.allclose(got, expected, rtol=1e-5)
    margins = crf32.marginals(emissions.float(), mask)
    assert torch.allclose(margins, crf.marginals(emissions, mask).float(), atol=1e-4)


def test_empty_batch_dimension():
    crf = CRF(3)
    emissions = torch.zeros(2, 0, 3)
    mask = torch.zeros(2, 0, dtype=torch.bool)
    tags = torch.zeros(2, 0, dtype=torch.long)
    assert torch.equal(crf.log_likelihood(emissions, tags, mask), torch.zeros(2))
    assert crf.decode(emissions, mask) == [[], []]
    assert crf.marginals(emissions, mask).shape == (2, 0, 3)


def bio_violation(names: List[str]) -> Optional[int]:
    """Index of the first tag that breaks BIO, or None."""
    previous = "O"
    for i, name in enumerate(names):
        if name.startswith("I-") and previous[2:] != name[2:]:
            return i
        previous = name
    return None


def test_bio_constraints_matrix():
    names = bio_tags(["b", "a"])
    crf = CRF(len(names))
    crf.set_bio_constraints(names)
    assert crf.allowed_start.tolist() == [True, True, False, True, False]
    index = {name: i for i, name in enumerate(names)}
    for source, target in itertools.product(names, names):
        expected = not target.startswith("I-") or source in ("B" + target[1:], target)
        assert bool(crf.allowed[index[source], index[target]]) == expected, (source, target)


def test_bio_constrained_decode_is_valid():
    torch.manual_seed(0)
    names = bio_tags(["colour", "Net content", "size-x"])
    crf = CRF(len(names))
    crf.set_bio_constraints(names)
    emissions = torch.randn(64, 12, len(names)) * 3
    emissions[:, :, [n.startswith("I-") for n in names]] += 2.0  # tempt I- tags
    mask = torch.arange(12)[None, :] < torch.randint(0, 13, (64,))[:, None]
    free = [[names[t] for t in row] for row in crf.decode(emissions, mask, constrained=False)]
    constrained = [[names[t] for t in row] for row in crf.decode(emissions, mask)]
    assert any(bio_violation(row) is not None for row in free)
    assert all(bio_violation(row) is None for row in constrained)


def test_infeasible_constraints_fall_back_to_unconstrained():
    crf, emissions, _, mask = make_case(3, [4, 2, 0], seed=5, scale=1.0)
    crf.allowed[1, :] = False
    crf.allowed_start[:] = False
    crf.allowed_start[1] = True  # only feasible start leads nowhere
    assert crf.decode(emissions[:, :1], mask[:, :1]) == [[1], [1], []]
    assert crf.decode(emissions, mask) == crf.decode(emissions, mask, constrained=False)


def test_set_bio_constraints_rejects_bad_names():
    crf = CRF(3)
    with pytest.raises(ValueError, match="expected 3"):
        crf.set_bio_constraints(["O", "B-a"])
    with pytest.raises(ValueError, match="invalid BIO tag 'X-a'"):
        crf.set_bio_constraints(["O", "B-a", "X-a"])


def test_bio_tags():
    assert bio_tags(["b", "a", "b"]) == ["O", "B-a", "I-a", "B-b", "I-b"]
    assert bio_tags([]) == ["O"]


@pytest.mark.parametrize(
    "tags,spans",
    [
        ([], []),
        (["O", "O"], []),
        (["B-a", "I-a", "O", "B-b"], [(0, 2, "a"), (3, 4, "b")]),
        (["B-a", "B-a", "I-a"], [(0, 1, "a"), (1, 3, "a")]),
        (["I-a", "I-a", "I-b", "O", "I-b"], [(0, 2, "a"), (2, 3, "b"), (4, 5, "b")]),
        (["B-Net content", "I-Net content", "B-size-x"], [(0, 2, "Net content"), (2, 3, "size-x")]),
    ],
)
def test_spans_from_bio(tags, spans):
    assert spans_from_bio(tags) == spans


def test_spans_from_bio_rejects_bad_tag():
    with pytest.raises(ValueError, match="invalid BIO tag 'B-'"):
        spans_from_bio(["O", "B-"])


def test_input_validation():
    crf = CRF(3)
    emissions = torch.zeros(2, 3, 3)
    tags = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="prefix"):
        crf.log_partition(emissions, torch.tensor([[True, False, True], [True, True, True]]))
    mask = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="emissions must be"):
        crf.log_partition(torch.zeros(2, 3, 4), mask)
    with pytest.raises(ValueError, match="dtype"):
        crf.log_partition(emissions.double(), mask)
    with pytest.raises(ValueError, match="mask must be bool"):
        crf.log_partition(emissions, mask.long())
    with pytest.raises(ValueError, match="tags must be in"):
        crf.log_likelihood(emissions, tags + 3, mask)


def test_matches_pytorch_crf():
    torchcrf = pytest.importorskip("torchcrf")
    torch.manual_seed(1)
    B, L, T = 8, 15, 7
    ours = CRF(T)
    theirs = torchcrf.CRF(T, batch_first=True)
    with torch.no_grad():
        ours.transitions.normal_()
        ours.start.normal_()
        ours.end.normal_()
        theirs.transitions.copy_(ours.transitions)
        theirs.start_transitions.copy_(ours.start)
        theirs.end_transitions.copy_(ours.end)
    emissions = torch.randn(B, L, T) * 2
    tags = torch.randint(0, T, (B, L))
    lengths = torch.randint(1, L + 1, (B,))
    lengths[0] = L
    mask = torch.arange(L)[None, :] < lengths[:, None]
    ours_em = emissions.clone().requires_grad_()
    theirs_em = emissions.clone().requires_grad_()
    ours_ll = ours.log_likelihood(ours_em, tags, mask)
    theirs_ll = theirs(theirs_em, tags, mask, reduction="none")
    assert torch.allclose(ours_ll, theirs_ll, rtol=1e-5, atol=1e-4)
    ours_ll.sum().backward()
    theirs_ll.sum().backward()
    assert torch.allclose(ours_em.grad, theirs_em.grad, atol=1e-5)
    assert torch.allclose(ours.transitions.grad, theirs.transitions.grad, atol=1e-4)
    assert ours.decode(emissions, mask, constrained=False) == theirs.decode(emissions, mask)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 9), st.integers(2, 6), st.sampled_from([0.1, 3.0, 40.0]), st.integers(0, 10_000), st.booleans())
def test_numpy_inference_matches_the_torch_crf(batch, length, n_tags, scale, seed, constrained):
    """The CPU inference path (ml/crf_numpy.py) gives the torch CRF's paths exactly and its marginals to 1e-5."""
    import numpy as np

    gen = torch.Generator().manual_seed(seed)
    crf = CRF(n_tags)
    with torch.no_grad():
        crf.transitions.copy_(torch.randn(n_tags, n_tags, generator=gen) * scale)
        crf.start.copy_(torch.randn(n_tags, generator=gen))
        crf.end.copy_(torch.randn(n_tags, generator=gen))
    crf.set_bio_constraints(bio_tags([f"L{i}" for i in range((n_tags - 1) // 2)])[:n_tags] if n_tags % 2 else ["O"] + [f"B-L{i}" for i in range(n_tags - 1)])
    emissions = torch.randn(batch, length, n_tags, generator=gen) * scale
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    mask = torch.arange(length)[None, :] < lengths[:, None]
    fast = crf.to_numpy()
    with torch.no_grad():
        expected_paths = crf.decode(emissions, mask, constrained=constrained)
        expected = crf.marginals(emissions, mask).numpy()
    assert fast.decode(emissions.numpy(), mask.numpy(), constrained=constrained) == expected_paths
    np.testing.assert_allclose(fast.marginals(emissions.numpy(), mask.numpy()), expected, atol=1e-5)
