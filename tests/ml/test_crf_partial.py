"""The partial-label likelihood of the CRF (issue 16) against brute-force enumeration of every tag sequence."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from spacy_mtlave.bio import bio_tags
from spacy_mtlave.ml.crf import CRF

from .test_crf import brute_force, is_allowed, make_case

torch.set_num_threads(1)


def random_allowed(n_tags: int, lengths, seed: int, share: float) -> torch.Tensor:
    """[B, L, T] bool with at least one allowed tag per position."""
    gen = torch.Generator().manual_seed(seed)
    allowed = torch.rand(len(lengths), max(lengths), n_tags, generator=gen) < share
    first = torch.randint(0, n_tags, (len(lengths), max(lengths)), generator=gen)
    allowed.scatter_(2, first[:, :, None], True)
    return allowed


def brute_partial(crf: CRF, emissions, allowed, n: int, constrained: bool):
    """log-sum-exp of the consistent paths' scores minus log Z, or None when no path is consistent."""
    paths, scores = brute_force(crf, emissions, n)
    keep = torch.tensor(
        [all(allowed[i, t] for i, t in enumerate(p)) and (not constrained or is_allowed(crf, p)) for p in paths]
    )
    if not keep.any():
        return None
    return torch.logsumexp(scores[keep], 0) - torch.logsumexp(scores, 0)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.integers(0, 2**31 - 1),
    st.sampled_from([0.3, 0.7]),
    st.booleans(),
    st.sampled_from([1.0, 3.0, 30.0]),
)
def test_matches_brute_force(n_tags, lengths, seed, share, constrained, scale):
    crf, emissions, _, mask = make_case(n_tags, lengths, seed, scale)
    gen = torch.Generator().manual_seed(seed + 1)
    crf.allowed.copy_(torch.rand(n_tags, n_tags, generator=gen) < 0.6)
    crf.allowed_start.copy_(torch.rand(n_tags, generator=gen) < 0.7)
    allowed = random_allowed(n_tags, lengths, seed + 2, share)
    expected = [brute_partial(crf, emissions[b], allowed[b], n, constrained) for b, n in enumerate(lengths)]
    feasible = crf.has_consistent_path(allowed, mask, constrained)
    assert feasible.tolist() == [e is not None for e in expected]
    rows = [b for b, e in enumerate(expected) if e is not None]
    if not rows:
        with pytest.raises(ValueError, match="no tag sequence consistent"):
            crf.partial_log_likelihood(emissions, allowed, mask, constrained)
        return
    with torch.no_grad():
        got = crf.partial_log_likelihood(emissions[rows], allowed[rows], mask[rows], constrained)
    for r, b in enumerate(rows):
        assert torch.allclose(got[r], expected[b], rtol=1e-9, atol=1e-9 * scale)


def test_every_tag_allowed_is_zero_loss_and_one_tag_is_the_full_label_loss():
    crf, emissions, tags, mask = make_case(5, [4, 1, 3, 0], seed=3, scale=2.0)
    everything = torch.ones(*emissions.shape, dtype=torch.bool)
    assert torch.allclose(crf.partial_log_likelihood(emissions, everything, mask), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    one = torch.nn.functional.one_hot(tags, 5).bool()
    assert torch.allclose(crf.partial_log_likelihood(emissions, one, mask), crf.log_likelihood(emissions, tags, mask), atol=1e-12)
    # the module's forward: -partial log-likelihood when `allowed` is passed
    assert torch.allclose(crf(emissions, tags, mask, allowed=one), -crf.log_likelihood(emissions, tags, mask))


def test_constrained_every_tag_allowed_is_the_mass_of_bio_paths():
    names = bio_tags(["Brand", "Size"])
    crf, emissions, _, mask = make_case(len(names), [3], seed=5, scale=1.0)
    crf.set_bio_constraints(names)
    everything = torch.ones(*emissions.shape, dtype=torch.bool)
    got = crf.partial_log_likelihood(emissions, everything, mask, constrained=True)
    paths, scores = brute_force(crf, emissions[0], 3)
    valid = torch.tensor([is_allowed(crf, p) for p in paths])
    assert torch.allclose(got[0], torch.logsumexp(scores[valid], 0) - torch.logsumexp(scores, 0))
    assert got[0] < 0


def test_a_known_span_crossing_the_bio_rules_has_no_consistent_path():
    names = bio_tags(["Brand"])  # O, B-Brand, I-Brand
    crf, emissions, _, mask = make_case(len(names), [2], seed=1, scale=1.0)
    crf.set_bio_constraints(names)
    allowed = torch.zeros(1, 2, 3, dtype=torch.bool)
    allowed[0, 0, names.index("O")] = True
    allowed[0, 1, names.index("I-Brand")] = True  # I- after O
    assert not crf.has_consistent_path(allowed, mask, constrained=True)[0]
    assert crf.has_consistent_path(allowed, mask, constrained=False)[0]


@pytest.mark.parametrize("constrained", [False, True])
def test_gradients_match_finite_differences(constrained):
    names = bio_tags(["A", "B"])
    crf, emissions, tags, mask = make_case(len(names), [4, 2, 3], seed=11, scale=1.0)
    crf.set_bio_constraints(names)
    allowed = torch.nn.functional.one_hot(tags, len(names)).bool()
    allowed[:, 1:] |= torch.rand(allowed[:, 1:].shape, generator=torch.Generator().manual_seed(2)) < 0.5
    allowed[..., names.index("O")] = True  # O everywhere: always a consistent BIO path
    params = (crf.transitions.detach(), crf.start.detach(), crf.end.detach())

    def loss(emissions, transitions, start, end):
        state = {"transitions": transitions, "start": start, "end": end}
        return functional_call(crf, state, (emissions, tags, mask), {"allowed": allowed, "constrained": constrained})

    inputs = tuple(t.clone().requires_grad_() for t in (emissions, *params))
    assert torch.autograd.gradcheck(loss, inputs)


def test_float32_gradients_are_finite_with_barred_tags():
    crf, emissions, tags, mask = make_case(7, [12, 5], seed=4, scale=3.0, dtype=torch.float32)
    crf.set_bio_constraints(bio_tags(["A", "B", "C"]))
    allowed = torch.zeros(*emissions.shape, dtype=torch.bool)
    allowed[..., 0] = True  # only O: one path, barred everywhere else
    emissions.requires_grad_()
    nll = crf(emissions, tags, mask, allowed=allowed, constrained=True).sum()
    nll.backward()
    assert torch.isfinite(nll) and torch.isfinite(emissions.grad).all()
    assert torch.isfinite(crf.transitions.grad).all()


def test_input_validation():
    crf, emissions, tags, mask = make_case(3, [2], seed=0, scale=1.0)
    with pytest.raises(ValueError, match="allowed must be bool"):
        crf.partial_log_likelihood(emissions, torch.ones(1, 2, 2, dtype=torch.bool), mask)
    with pytest.raises(ValueError, match="allowed must be bool"):
        crf.partial_log_likelihood(emissions, torch.ones(1, 2, 3), mask)
