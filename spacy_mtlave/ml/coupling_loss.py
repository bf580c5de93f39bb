"""Total coupling error (TCE) of Jain et al., section 3.4, as a torch module.

Shapes: n = anchor contexts in a directional batch, K = padded partner-set
size, d = window embedding dimension. Direction "12" has anchors from
vertical 1 and partners from vertical 2 (CCE with `a1`, LCE); direction "21"
is the reverse (CCE' with `a2`, LCE'). Padding partners (mask False) and
anchors without partners contribute nothing.
"""
import zlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

DIRECTIONS = ("12", "21")
ArrayLike = Union[Tensor, np.ndarray]


class PairBatch(NamedTuple):
    """Anchor contexts with their padded partner contexts from the other vertical.

    u_anchor [n, d], u_partner [n, K, d]: fixed window embeddings (no grad).
    mask [n, K] bool: real partners. s_anchor [n], s_partner [n, K]: gold-tag
    emission scores under each context's own vertical. y_anchor [n],
    y_partner [n, K] long: gold tag ids into each vertical's tag list.
    sampled [n, K] bool (optional): the pairs whose score difference enters the
    loss (default: every real partner); attention is always normalised over the
    whole partner set ``mask``, so a minibatch of pairs drawn from L needs the
    scores of the drawn pairs only.
    """

    u_anchor: Tensor
    u_partner: Tensor
    mask: Tensor
    s_anchor: Tensor
    s_partner: Tensor
    y_anchor: Tensor
    y_partner: Tensor
    sampled: Optional[Tensor] = None


def label_kgrams(tag: str, k: int) -> List[str]:
    """Character k-grams of "<" + tag + ">"; the whole padded string if shorter than k."""
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    padded = f"<{tag}>"
    if len(padded) <= k:
        return [padded]
    return [padded[i : i + k] for i in range(len(padded) - k + 1)]


def kgram_bucket(kgram: str, n_buckets: int) -> int:
    """Stable hash bucket (crc32 of the UTF-8 bytes) of a k-gram in [0, n_buckets)."""
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be positive, got {n_buckets}")
    return zlib.crc32(kgram.encode("utf-8")) % n_buckets


class CouplingLoss(nn.Module):
    """TCE = CCE + CCE' + LCE + LCE' over two directional pair batches.

    Parameters: `a1`, `a2` [dim] (Luong attention weights, init ones) and
    `label_table` [n_buckets, label_dim] (k-gram embeddings; a tag's label
    vector is the mean of its k-gram rows). Buffers `kgrams{1,2}` and
    `kgram_mask{1,2}` [n_tags, max_kgrams] hold each tag's k-gram buckets.
    """

    def __init__(
        self,
        dim: int,
        tags1: Sequence[str],
        tags2: Sequence[str],
        k: int = 3,
        n_buckets: int = 4096,
        label_dim: int = 32,
        label_init_std: float = 0.1,
        use_context: bool = True,
        use_label: bool = True,
    ) -> None:
        super().__init__()
        if dim < 1 or label_dim < 1:
            raise ValueError(f"dim and label_dim must be positive, got {dim}, {label_dim}")
        self.use_context = use_context
        self.use_label = use_label
        self.a1 = nn.Parameter(torch.ones(dim))
        self.a2 = nn.Parameter(torch.ones(dim))
        self.label_table = nn.Parameter(torch.randn(n_buckets, label_dim) * label_init_std)
        for vertical, tags in ((1, tags1), (2, tags2)):
            if not tags:
                raise ValueError(f"tags{vertical} must not be empty")
            ids, mask = _kgram_matrix(tags, k, n_buckets)
            self.register_buffer(f"kgrams{vertical}", ids)
            self.register_buffer(f"kgram_mask{vertical}", mask)

    def label_vectors(self, vertical: int) -> Tensor:
        """Label vectors of a vertical's tags [n_tags, label_dim]."""
        if vertical not in (1, 2):
            raise ValueError(f"vertical must be 1 or 2, got {vertical}")
        ids, mask = getattr(self, f"kgrams{vertical}"), getattr(self, f"kgram_mask{vertical}")
        weights = mask.to(self.label_table.dtype)
        rows = self.label_table[ids] * weights[:, :, None]
        return rows.sum(1) / weights.sum(1, keepdim=True)

    def context_attention(self, batch: PairBatch, direction: str) -> Tensor:
        """Softmax over each partner set of u_anchor^T diag(a) u_partner [n, K]."""
        self._check(batch, direction)
        a = self.a1 if direction == "12" else self.a2
        scores = torch.einsum("nd,d,nkd->nk", batch.u_anchor.to(a), a, batch.u_partner.to(a))
        return _masked_softmax(scores, batch.mask)

    def label_attention(self, batch: PairBatch, direction: str) -> Tensor:
        """Softmax over each partner set of v(anchor tag) . v(partner tag) [n, K]."""
        self._check(batch, direction)
        v1, v2 = self.label_vectors(1), self.label_vectors(2)
        v_anchor, v_partner = (v1, v2) if direction == "12" else (v2, v1)
        y_partner = batch.y_partner.masked_fill(~batch.mask, 0)
        scores = torch.einsum("nl,nkl->nk", v_anchor[batch.y_anchor], v_partner[y_partner])
        return _masked_softmax(scores, batch.mask)

    def terms(self, batch12: PairBatch, batch21: PairBatch) -> Dict[str, Tensor]:
        """Scalar terms "cce", "cce_rev", "lce", "lce_rev" (0 when switched off)."""
        out = {}
        for batch, direction, suffix in ((batch12, "12", ""), (batch21, "21", "_rev")):
            self._check(batch, direction)
            diff = (batch.s_anchor[:, None] - batch.s_partner).abs()
            used = batch.mask if batch.sampled is None else batch.mask & batch.sampled
            diff = torch.where(used, diff, torch.zeros_like(diff))
            zero = diff.new_zeros(())
            out["cce" + suffix] = (
                (self.context_attention(batch, direction) * diff).sum() if self.use_context else zero
            )
            out["lce" + suffix] = (
                (self.label_attention(batch, direction) * diff).sum() if self.use_label else zero
            )
        return {key: out[key] for key in ("cce", "cce_rev", "lce", "lce_rev")}

    def forward(self, batch12: PairBatch, batch21: PairBatch) -> Tensor:
        """Total coupling error, a scalar."""
        terms = self.terms(batch12, batch21)
        return terms["cce"] + terms["cce_rev"] + terms["lce"] + terms["lce_rev"]

    def _check(self, batch: PairBatch, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be '12' or '21', got {direction!r}")
        n, n_partners = batch.mask.shape
        expected = {
            "u_anchor": (n, self.a1.shape[0]),
            "u_partner": (n, n_partners, self.a1.shape[0]),
            "s_anchor": (n,),
            "s_partner": (n, n_partners),
            "y_anchor": (n,),
            "y_partner": (n, n_partners),
        }
        for field, shape in expected.items():
            if tuple(getattr(batch, field).shape) != shape:
                got = tuple(getattr(batch, field).shape)
                raise ValueError(f"PairBatch.{field} has shape {got}, expected {shape}")
        if batch.mask.dtype != torch.bool:
            raise ValueError(f"PairBatch.mask must be bool, got {batch.mask.dtype}")
        n_anchor = self.kgrams1.shape[0] if direction == "12" else self.kgrams2.shape[0]
        n_partner = self.kgrams2.shape[0] if direction == "12" else self.kgrams1.shape[0]
        _check_ids(batch.y_anchor, n_anchor, "y_anchor")
        _check_ids(batch.y_partner[batch.mask], n_partner, "y_partner")


class PairwiseCouplingLoss(nn.Module):
    """TCE for several vertical pairs at once: one :class:`CouplingLoss` (its own attention vectors a1, a2 [dim]) per
    coupled pair of verticals, keyed ``"i-j"`` (indices into ``tags``), all sharing one label k-gram table
    [n_buckets, label_dim], so a tag name gets the same label vector in every pair it is coupled in."""

    def __init__(self, dim: int, tags: Sequence[Sequence[str]], pairs: Sequence[Tuple[int, int]], **kwargs) -> None:
        super().__init__()
        if not pairs:
            raise ValueError("pairs must name at least one pair of verticals")
        self.pairs = nn.ModuleDict({pair_key(i, j): CouplingLoss(dim, tags[i], tags[j], **kwargs) for i, j in pairs})
        shared = next(iter(self.pairs.values())).label_table
        for module in self.pairs.values():
            module.label_table = shared

    def forward(self, key: str, batch12: PairBatch, batch21: PairBatch) -> Tensor:
        """Total coupling error of pair ``key``, a scalar."""
        return self.pairs[key](batch12, batch21)


def pair_key(i: int, j: int) -> str:
    """Key of the pair of verticals i and j (their positions in the coupled taggers) in a PairwiseCouplingLoss."""
    return f"{i}-{j}"


def attention_totals_by_tags(
    attention: ArrayLike, y_anchor: ArrayLike, y_partner: ArrayLike, mask: ArrayLike,
    n_tags_anchor: int, n_tags_partner: int,
) -> Tuple[np.ndarray, np.ndarray]:
    """Summed attention and number of (anchor, partner) entries per (anchor tag,
    partner tag) pair, both [n_tags_anchor, n_tags_partner]; add these over
    batches before dividing."""
    att, y_a, y_p, keep = (_numpy(x) for x in (attention, y_anchor, y_partner, mask))
    keep = keep.astype(bool)
    rows = np.broadcast_to(y_a[:, None], keep.shape)[keep]
    cols = y_p[keep]
    if rows.size and (rows.min() < 0 or rows.max() >= n_tags_anchor):
        raise ValueError(f"y_anchor must be in [0, {n_tags_anchor})")
    if cols.size and (cols.min() < 0 or cols.max() >= n_tags_partner):
        raise ValueError(f"y_partner must be in [0, {n_tags_partner}) on unmasked positions")
    flat = rows * n_tags_partner + cols
    size = n_tags_anchor * n_tags_partner
    shape = (n_tags_anchor, n_tags_partner)
    sums = np.bincount(flat, weights=att[keep].astype(np.float64), minlength=size)
    counts = np.bincount(flat, minlength=size)
    return sums.reshape(shape), counts.reshape(shape)


def attention_by_tags(
    attention: ArrayLike, y_anchor: ArrayLike, y_partner: ArrayLike, mask: ArrayLike,
    n_tags_anchor: int, n_tags_partner: int,
) -> np.ndarray:
    """Mean attention per (anchor tag, partner tag) pair [n_tags_anchor,
    n_tags_partner]; 0 where no pair occurs (Figure 4 heatmap)."""
    sums, counts = attention_totals_by_tags(
        attention, y_anchor, y_partner, mask, n_tags_anchor, n_tags_partner
    )
    return sums / np.maximum(counts, 1)


def _kgram_matrix(tags: Sequence[str], k: int, n_buckets: int) -> Tuple[Tensor, Tensor]:
    """Padded k-gram bucket ids [n_tags, max_kgrams] and their mask."""
    buckets = [[kgram_bucket(g, n_buckets) for g in label_kgrams(tag, k)] for tag in tags]
    width = max(len(row) for row in buckets)
    ids = torch.zeros(len(tags), width, dtype=torch.long)
    mask = torch.zeros(len(tags), width, dtype=torch.bool)
    for i, row in enumerate(buckets):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = True
    return ids, mask


def _masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis restricted to `mask`; 0 off the mask and on empty rows."""
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1) * mask


def _check_ids(ids: Tensor, n_tags: int, field: str) -> None:
    if ids.numel() and (ids.min() < 0 or ids.max() >= n_tags):
        raise ValueError(f"PairBatch.{field} must be in [0, {n_tags}) on real entries")


def _numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
