import io
import math
from typing import Dict, List, Sequence

import numpy as np
import pytest
import torch
from torch.func import functional_call

from spacy_mtlave.ml.coupling_loss import (
    CouplingLoss,
    PairBatch,
    attention_by_tags,
    attention_totals_by_tags,
    kgram_bucket,
    label_kgrams,
)

torch.set_num_threads(1)

TAGS1 = ["O", "B-Brand", "I-Brand", "B-Net content", "I-Net content"]
TAGS2 = ["O", "B-Color", "B-Brand", "I-Brand"]
DIM = 5


def make_batch(
    partner_counts: Sequence[int], n_anchor_tags: int, n_partner_tags: int, seed: int,
    width: int = 3, dtype=torch.float64,
) -> PairBatch:
    """A random batch whose row i has `partner_counts[i]` real partners at
    scattered positions; |s_anchor - s_partner| >= 0.5 on real pairs; padding
    entries hold garbage (large scores, tag id -1)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(partner_counts)
    mask = torch.zeros(n, width, dtype=torch.bool)
    for i, count in enumerate(partner_counts):
        mask[i, torch.randperm(width, generator=gen)[:count]] = True
    s_anchor = torch.randn(n, generator=gen, dtype=dtype)
    sign = torch.randint(0, 2, (n, width), generator=gen).to(dtype) * 2 - 1
    gap = 0.5 + torch.rand(n, width, generator=gen, dtype=dtype)
    s_partner = torch.where(mask, s_anchor[:, None] + sign * gap, torch.full_like(gap, 1e6))
    y_partner = torch.randint(0, n_partner_tags, (n, width), generator=gen)
    return PairBatch(
        u_anchor=torch.randn(n, DIM, generator=gen, dtype=dtype),
        u_partner=torch.randn(n, width, DIM, generator=gen, dtype=dtype),
        mask=mask,
        s_anchor=s_anchor,
        s_partner=s_partner,
        y_anchor=torch.randint(0, n_anchor_tags, (n,), generator=gen),
        y_partner=y_partner.masked_fill(~mask, -1),
    )


def make_pair(counts12: Sequence[int], counts21: Sequence[int], seed: int = 0):
    return (
        make_batch(counts12, len(TAGS1), len(TAGS2), seed),
        make_batch(counts21, len(TAGS2), len(TAGS1), seed + 1),
    )


def make_loss(seed: int = 0, **kwargs) -> CouplingLoss:
    """A float64 module with random (non-init) a1, a2 and a small label table."""
    torch.manual_seed(seed)
    kwargs = {"n_buckets": 64, "label_dim": 4, **kwargs}
    loss = CouplingLoss(DIM, TAGS1, TAGS2, **kwargs).double()
    with torch.no_grad():
        loss.a1.add_(torch.randn(DIM, dtype=torch.float64) * 0.3)
        loss.a2.add_(torch.randn(DIM, dtype=torch.float64) * 0.3)
        loss.label_table.mul_(10)
    return loss


def brute_force_terms(loss: CouplingLoss, batch12: PairBatch, batch21: PairBatch) -> Dict[str, float]:
    """CCE/LCE by plain loops over pairs, label vectors from the k-gram strings."""
    table = loss.label_table.detach().tolist()

    def label_vector(tag: str) -> List[float]:
        rows = [table[kgram_bucket(g, len(table))] for g in label_kgrams(tag, 3)]
        return [sum(col) / len(rows) for col in zip(*rows)]

    def attention_sum(batch: PairBatch, score) -> float:
        total = 0.0
        for i in range(batch.mask.shape[0]):
            partners = [k for k in range(batch.mask.shape[1]) if batch.mask[i, k]]
            exps = [math.exp(score(i, k)) for k in partners]
            for k, e in zip(partners, exps):
                diff = abs(float(batch.s_anchor[i]) - float(batch.s_partner[i, k]))
                total += e / sum(exps) * diff
        return total

    out = {}
    for batch, a, tags_a, tags_p, suffix in (
        (batch12, loss.a1, TAGS1, TAGS2, ""),
        (batch21, loss.a2, TAGS2, TAGS1, "_rev"),
    ):
        a = a.detach().tolist()

        def context(i, k, batch=batch, a=a):
            u, w = batch.u_anchor[i].tolist(), batch.u_partner[i, k].tolist()
            return sum(x * ad * y for x, ad, y in zip(u, a, w))

        def label(i, k, batch=batch, tags_a=tags_a, tags_p=tags_p):
            v = label_vector(tags_a[int(batch.y_anchor[i])])
            w = label_vector(tags_p[int(batch.y_partner[i, k])])
            return sum(x * y for x, y in zip(v, w))

        out["cce" + suffix] = attention_sum(batch, context)
        out["lce" + suffix] = attention_sum(batch, label)
    return out


def test_label_kgrams():
    assert label_kgrams("O", 3) == ["<O>"]
    assert label_kgrams("O", 5) == ["<O>"]
    assert label_kgrams("B-Net", 3) == ["<B-", "B-N", "-Ne", "Net", "et>"]
    assert label_kgrams("B-a b", 4) == ["<B-a", "B-a ", "-a b", "a b>"]
    assert label_kgrams("I-X", 1) == ["<", "I", "-", "X", ">"]
    with pytest.raises(ValueError, match="k must be positive"):
        label_kgrams("O", 0)


def test_kgram_bucket_is_stable_crc32():
    # fixed values: python's salted hash() would change between processes
    assert kgram_bucket("<B-", 4096) == 1044
    assert kgram_bucket("Net", 4096) == 799
    assert all(0 <= kgram_bucket(g, 7) < 7 for g in label_kgrams("B-Net content", 3))
    with pytest.raises(ValueError, match="n_buckets"):
        kgram_bucket("abc", 0)


def test_identical_tags_share_label_vectors():
    loss = make_loss()
    v1, v2 = loss.label_vectors(1), loss.label_vectors(2)
    assert v1.shape == (len(TAGS1), 4) and v2.shape == (len(TAGS2), 4)
    for tag in ("O", "B-Brand", "I-Brand"):
        torch.testing.assert_close(v1[TAGS1.index(tag)], v2[TAGS2.index(tag)], rtol=0, atol=0)
    assert not torch.allclose(v1[TAGS1.index("B-Brand")], v2[TAGS2.index("B-Color")])
    expected = loss.label_table[[kgram_bucket(g, 64) for g in label_kgrams("B-Color", 3)]].mean(0)
    torch.testing.assert_close(v2[TAGS2.index("B-Color")], expected)


def test_init():
    torch.manual_seed(3)
    first = CouplingLoss(DIM, TAGS1, TAGS2)
    torch.manual_seed(3)
    second = CouplingLoss(DIM, TAGS1, TAGS2)
    assert torch.equal(first.a1, torch.ones(DIM)) and torch.equal(first.a2, torch.ones(DIM))
    assert first.label_table.shape == (4096, 32)
    assert 0.09 < first.label_table.std().item() < 0.11
    assert torch.equal(first.label_table, second.label_table)
    # at init, alpha is the plain dot product
    batch = make_batch([3, 2], len(TAGS1), len(TAGS2), seed=5, dtype=torch.float32)
    dots = torch.einsum("nd,nkd->nk", batch.u_anchor, batch.u_partner)
    expected = torch.softmax(dots.masked_fill(~batch.mask, -math.inf), -1)
    torch.testing.assert_close(first.context_attention(batch, "12"), expected)
    with pytest.raises(ValueError, match="tags2 must not be empty"):
        CouplingLoss(DIM, TAGS1, [])


@pytest.mark.parametrize("kind", ["context", "label"])
@pytest.mark.parametrize("direction", ["12", "21"])
def test_attention_rows_sum_to_one(kind, direction):
    loss = make_loss()
    batch12, batch21 = make_pair([3, 1, 0, 2, 3], [2, 0, 1, 3])
    batch = batch12 if direction == "12" else batch21
    attention = getattr(loss, f"{kind}_attention")(batch, direction)
    assert attention.shape == batch.mask.shape
    assert torch.all(attention[~batch.mask] == 0)
    assert torch.all(attention[batch.mask] > 0)
    sums = attention.sum(1)
    has_partner = batch.mask.any(1)
    torch.testing.assert_close(sums[has_partner], torch.ones_like(sums[has_partner]))
    assert torch.all(sums[~has_partner] == 0)


def test_vectorised_equals_brute_force():
    loss = make_loss(seed=1)
    batch12, batch21 = make_pair([3, 1, 0, 2, 3, 2], [2, 0, 1, 3], seed=7)
    terms = loss.terms(batch12, batch21)
    expected = brute_force_terms(loss, batch12, batch21)
    assert set(terms) == {"cce", "cce_rev", "lce", "lce_rev"}
    for key, value in expected.items():
        assert value > 0
        assert terms[key].item() == pytest.approx(value, rel=1e-10)
    assert loss(batch12, batch21).item() == pytest.approx(sum(expected.values()), rel=1e-10)


def test_gradcheck():
    loss = make_loss(seed=2)
    batch12, batch21 = make_pair([3, 0, 2, 1], [1, 3, 0], seed=11)

    def tce(s_a12, s_p12, s_a21, s_p21, a1, a2, table):
        b12 = batch12._replace(s_anchor=s_a12, s_partner=s_p12)
        b21 = batch21._replace(s_anchor=s_a21, s_partner=s_p21)
        params = {"a1": a1, "a2": a2, "label_table": table}
        return functional_call(loss, params, (b12, b21))

    inputs = tuple(
        x.detach().clone().requires_grad_(True)
        for x in (
            batch12.s_anchor, batch12.s_partner, batch21.s_anchor, batch21.s_partner,
            loss.a1, loss.a2, loss.label_table,
        )
    )
    assert torch.autograd.gradcheck(tce, inputs)
    grads = torch.autograd.grad(tce(*inputs), inputs)
    # padding partners get no gradient; real ones do
    assert torch.all(grads[1][~batch12.mask] == 0)
    assert torch.all(grads[1][batch12.mask] != 0)
    assert all(g.abs().sum() > 0 for g in grads[4:])


def test_padding_rows_and_empty_batch_contribute_nothing():
    loss = make_loss()
    batch12, batch21 = make_pair([2, 3], [1, 2])
    garbage = make_batch([0], len(TAGS1), len(TAGS2), seed=3)  # y_partner -1
    garbage = garbage._replace(s_partner=torch.full_like(garbage.s_partner, math.inf))
    padded12 = PairBatch(*(None if x is None else torch.cat([x, g]) for x, g in zip(batch12, garbage)))
    padded12.s_partner.requires_grad_(True)
    base, with_empty_row = loss.terms(batch12, batch21), loss.terms(padded12, batch21)
    for key in base:
        torch.testing.assert_close(with_empty_row[key], base[key])
    grads = torch.autograd.grad(sum(with_empty_row.values()), [padded12.s_partner, loss.a1])
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.all(grads[0][-1] == 0)
    empty = make_batch([], len(TAGS1), len(TAGS2), seed=0)
    empty_rev = make_batch([], len(TAGS2), len(TAGS1), seed=0)
    only_padding = make_batch([0, 0], len(TAGS2), len(TAGS1), seed=0)
    params = list(loss.parameters())
    for b12, b21 in ((empty, empty_rev), (empty, only_padding)):
        b12.s_anchor.requires_grad_(True)
        b21.s_partner.requires_grad_(True)
        total = loss(b12, b21)
        assert total.item() == 0
        grads = torch.autograd.grad(
            total, params + [b12.s_anchor, b21.s_partner], allow_unused=True, materialize_grads=True
        )
        assert all(torch.all(g == 0) for g in grads)


def test_flags_switch_terms_off():
    batch12, batch21 = make_pair([3, 1, 2], [2, 3], seed=4)
    full = make_loss(seed=5).terms(batch12, batch21)
    no_context = make_loss(seed=5, use_context=False)
    terms = no_context.terms(batch12, batch21)
    assert terms["cce"].item() == 0 and terms["cce_rev"].item() == 0
    torch.testing.assert_close(terms["lce"], full["lce"])
    torch.testing.assert_close(terms["lce_rev"], full["lce_rev"])
    grads = torch.autograd.grad(
        no_context(batch12, batch21), list(no_context.parameters()),
        allow_unused=True, materialize_grads=True,
    )
    assert torch.all(grads[0] == 0) and torch.all(grads[1] == 0)
    assert grads[2].abs().sum() > 0
    no_label = make_loss(seed=5, use_label=False)
    terms = no_label.terms(batch12, batch21)
    assert terms["lce"].item() == 0 and terms["lce_rev"].item() == 0
    torch.testing.assert_close(terms["cce"], full["cce"])
    grads = torch.autograd.grad(
        no_label(batch12, batch21), list(no_label.parameters()),
        allow_unused=True, materialize_grads=True,
    )
    assert torch.all(grads[2] == 0)
    assert grads[0].abs().sum() > 0 and grads[1].abs().sum() > 0


def test_state_dict_round_trip():
    loss = make_loss(seed=6)
    state = loss.state_dict()
    assert {"a1", "a2", "label_table", "kgrams1", "kgram_mask1", "kgrams2", "kgram_mask2"} <= set(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = make_loss(seed=99)
    batch12, batch21 = make_pair([3, 1, 2], [2, 3], seed=8)
    assert restored(batch12, batch21).item() != loss(batch12, batch21).item()
    restored.load_state_dict(torch.load(buffer))
    assert torch.equal(restored(batch12, batch21), loss(batch12, batch21))


def test_bad_input_raises():
    loss = make_loss()
    batch12, batch21 = make_pair([3, 1], [2])
    with pytest.raises(ValueError, match="direction"):
        loss.context_attention(batch12, "13")
    with pytest.raises(ValueError, match="PairBatch.s_partner"):
        loss(batch12._replace(s_partner=batch12.s_partner[:, :2]), batch21)
    with pytest.raises(ValueError, match="PairBatch.u_anchor"):
        loss(batch12._replace(u_anchor=batch12.u_anchor[:, :2]), batch21)
    with pytest.raises(ValueError, match="PairBatch.y_partner"):
        # ids of vertical 1 (5 tags) used as partners of vertical 2 (4 tags)
        loss(batch12._replace(y_partner=batch12.y_partner.masked_fill(batch12.mask, 4)), batch21)


def test_attention_by_tags():
    attention = torch.tensor([[0.7, 0.3, 0.0], [1.0, 0.0, 0.0], [0.2, 0.5, 0.3]])
    mask = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])
    y_anchor = torch.tensor([0, 0, 2])
    y_partner = torch.tensor([[1, 0, 1], [1, 9, 9], [1, 1, 0]])
    sums, counts = attention_totals_by_tags(attention, y_anchor, y_partner, mask, 3, 2)
    np.testing.assert_array_equal(counts, [[1, 2], [0, 0], [1, 2]])
    np.testing.assert_allclose(sums, [[0.3, 1.7], [0, 0], [0.3, 0.7]])
    mean = attention_by_tags(attention.numpy(), y_anchor, y_partner, mask, 3, 2)
    np.testing.assert_allclose(mean, [[0.3, 0.85], [0, 0], [0.3, 0.35]])
    with pytest.raises(ValueError, match="y_partner"):
        attention_by_tags(attention, y_anchor, y_partner, mask, 3, 1)


def test_sampled_pairs_restrict_the_sum_not_the_softmax():
    """A minibatch of pairs drawn from L: attention is normalised over the whole partner set, only drawn pairs count."""
    loss = make_loss()
    batch12, batch21 = make_pair([3, 2], [2, 2])
    sampled = torch.zeros_like(batch12.mask)
    sampled[0, 1] = True
    drawn = batch12._replace(sampled=sampled)
    attention = loss.context_attention(batch12, "12")
    expected = attention[0, 1] * (batch12.s_anchor[0] - batch12.s_partner[0, 1]).abs()
    empty21 = batch21._replace(sampled=torch.zeros_like(batch21.mask))
    torch.testing.assert_close(loss.terms(drawn, empty21)["cce"], expected)
    torch.testing.assert_close(loss.context_attention(drawn, "12"), attention)
    assert loss.terms(drawn, empty21)["cce_rev"] == 0
