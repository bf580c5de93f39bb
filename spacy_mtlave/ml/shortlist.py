"""The shortlist L of similar context pairs across two verticals (paper section 3.4).

A context is a token position; its embedding ``u`` is the mean of the static word vectors in a window around it.
``L = {(c, c') | cos(u_c, u'_c') > thresh}`` with ``c`` a context of vertical 1 and ``c'`` one of vertical 2, optionally
keeping only the ``top_k`` most similar partners of each context. Similarities are computed in row blocks, so memory
stays ``O(block_size * n2 + (n1 + n2) * top_k)`` and the full ``n1 x n2`` matrix never exists.
"""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from spacy.tokens import Doc

# With top_k, a block is "dense" when more than 1/_DENSE_FRACTION of its similarities pass the threshold; its
# candidates are then pruned with a lower bound on each row's / column's k-th largest similarity taken from the maxima
# of groups of up to _GROUP entries, which caps them at about top_k * _GROUP per row / column.
_DENSE_FRACTION = 64
_GROUP = 16
_SAMPLE_STRIDE = 16  # every 16th row of a block estimates its density


def context_embeddings(docs: Sequence[Doc], window: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Window-mean word vectors of every token of every doc.

    Token ``i`` of a doc gets the mean of the vectors of the in-vocabulary tokens in ``[i - window, i + window]``
    (clipped to the doc); vectors are looked up by lower-cased text in ``docs[0].vocab.vectors``, and a window without
    any known word gets a zero vector.
    RETURNS (U float32 [n_tokens, d], index int32 [n_tokens, 2] of (doc index, token index)), tokens in doc order.
    """
    if window < 0:
        raise ValueError(f"context_embeddings: window must be >= 0, got {window}")
    if len(docs) == 0:
        raise ValueError("context_embeddings: docs is empty")
    vectors = docs[0].vocab.vectors
    if vectors.mode != "default":
        raise ValueError(f"context_embeddings: vectors mode {vectors.mode!r} is not supported, only 'default'")
    d = vectors.shape[1]
    if d == 0:
        raise ValueError("context_embeddings: the vocab has no word vectors (vocab.vectors is empty)")
    lengths = np.array([len(doc) for doc in docs], dtype=np.int64)
    n = int(lengths.sum())
    rows = np.concatenate(
        [np.zeros(0, dtype=np.int64)]
        + [np.asarray(vectors.find(keys=[token.text.lower() for token in doc]), dtype=np.int64) for doc in docs]
    )
    known = rows >= 0
    word_vectors = np.zeros((n, d), dtype=np.float32)
    word_vectors[known] = np.asarray(vectors.data, dtype=np.float32)[rows[known]]
    doc_ids = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    positions = np.arange(n, dtype=np.int64)
    token_ids = positions - (np.cumsum(lengths) - lengths)[doc_ids]
    doc_lengths = lengths[doc_ids]
    sums = np.zeros((n, d), dtype=np.float32)
    counts = np.zeros(n, dtype=np.float32)
    reach = min(window, int(lengths.max(initial=1)) - 1)
    for offset in range(-reach, reach + 1):
        inside = (token_ids + offset >= 0) & (token_ids + offset < doc_lengths)
        source = np.clip(positions + offset, 0, max(n - 1, 0))
        sums += word_vectors[source] * inside[:, None]
        counts += inside & known[source]
    U = sums / np.maximum(counts, 1.0)[:, None]
    index = np.stack([doc_ids, token_ids], axis=1).astype(np.int32)
    return U, index


@dataclass
class PartnerContexts:
    """CSR partner lists: context ``c`` has partners ``indices[indptr[c]:indptr[c + 1]]`` (int32) with cosine
    similarities ``sims`` (float32), most similar first, ties by lower index. ``indptr`` is int64 [n + 1]."""

    indptr: np.ndarray
    indices: np.ndarray
    sims: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, c: int) -> Tuple[np.ndarray, np.ndarray]:
        start, end = self.indptr[c], self.indptr[c + 1]
        return self.indices[start:end], self.sims[start:end]

    def counts(self) -> np.ndarray:
        """Number of partners of each context, int64 [n]."""
        return np.diff(self.indptr)


@dataclass
class Shortlist:
    """Context pairs of L in both directions: ``partners_12`` lists, for each context of vertical 1, its partners in
    vertical 2; ``partners_21`` the reverse. Without ``top_k`` the two are transposes of each other. ``best_similarity``
    is the largest cosine seen between nonzero contexts (-inf if there was none), informative when L is empty."""

    partners_12: PartnerContexts
    partners_21: PartnerContexts
    thresh: float
    top_k: Optional[int]
    best_similarity: float
    build_seconds: float

    @property
    def n1(self) -> int:
        return len(self.partners_12)

    @property
    def n2(self) -> int:
        return len(self.partners_21)

    def pairs(self) -> Tuple[np.ndarray, np.ndarray]:
        """Distinct pairs in the union of both directions, sorted: (contexts of vertical 1, contexts of vertical 2),
        int32 [n_pairs] each."""
        codes = _pair_codes(self.partners_12, self.n2, False)
        if self.top_k is not None:
            codes = np.concatenate([codes, _pair_codes(self.partners_21, self.n2, True)])
        codes.sort()
        codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])] if len(codes) else codes
        c1, c2 = np.divmod(codes, max(self.n2, 1))
        return c1.astype(np.int32), c2.astype(np.int32)

    def n_pairs(self) -> int:
        """Number of distinct pairs in the union of both directions."""
        return len(self.pairs()[0])

    def symmetric(self) -> "Shortlist":
        """L as one set of pairs (the union of both directions), as the paper writes it: ``partners_12`` and
        ``partners_21`` become transposes of each other, so a context's partner set L(j, i) holds every context it is
        paired with in L (with ``top_k``, possibly more than k). Without top_k the shortlist is already symmetric."""
        if self.top_k is None:
            return self
        n1, n2 = self.n1, self.n2
        codes, sims = [], []
        for partners, transposed in ((self.partners_12, False), (self.partners_21, True)):
            codes.append(_pair_codes(partners, n2, transposed))
            sims.append(partners.sims)
        code, sim = np.concatenate(codes), np.concatenate(sims)
        order = np.argsort(code, kind="stable")
        code, sim = code[order], sim[order]
        first = np.concatenate([[True], code[1:] != code[:-1]]) if len(code) else np.zeros(0, dtype=bool)
        c1, c2 = np.divmod(code[first], max(n2, 1))
        sim = sim[first].astype(np.float32)
        by_1 = np.argsort((c1.astype(np.uint64) << np.uint64(32)) | _descending_key(sim), kind="stable")
        by_2 = np.argsort((c2.astype(np.uint64) << np.uint64(32)) | _descending_key(sim), kind="stable")
        return Shortlist(
            partners_12=_csr(n1, c1[by_1], c2[by_1], sim[by_1]),
            partners_21=_csr(n2, c2[by_2], c1[by_2], sim[by_2]),
            thresh=self.thresh,
            top_k=self.top_k,
            best_similarity=self.best_similarity,
            build_seconds=self.build_seconds,
        )

    def partner_counts(self, direction: str) -> np.ndarray:
        """Partners per context, int64 [n1] for direction "12" and [n2] for "21"."""
        if direction not in ("12", "21"):
            raise ValueError(f"partner_counts: direction must be '12' or '21', got {direction!r}")
        return (self.partners_12 if direction == "12" else self.partners_21).counts()

    def summary(self) -> Dict[str, object]:
        """Size, build time and partner-count distribution per direction, JSON-serialisable."""
        result: Dict[str, object] = {
            "n1": self.n1,
            "n2": self.n2,
            "thresh": self.thresh,
            "top_k": self.top_k,
            "n_pairs": self.n_pairs(),
            "best_similarity": float(self.best_similarity) if np.isfinite(self.best_similarity) else None,
            "build_seconds": self.build_seconds,
        }
        for direction in ("12", "21"):
            counts = self.partner_counts(direction)
            stats = {"min": 0.0, "median": 0.0, "mean": 0.0, "p90": 0.0, "max": 0.0}
            if len(counts):
                stats = {
                    "min": float(counts.min()),
                    "median": float(np.median(counts)),
                    "mean": float(counts.mean()),
                    "p90": float(np.percentile(counts, 90)),
                    "max": float(counts.max()),
                }
            stats["n_with_partner"] = int(np.count_nonzero(counts))
            result[f"partners_{direction}"] = stats
        return result

    def to_disk(self, path: Union[str, Path]) -> None:
        """Save as an uncompressed .npz file at exactly ``path``."""
        with Path(path).open("wb") as file_:
            np.savez(
                file_,
                **{
                    f"{name}_{direction}": getattr(partners, name)
                    for direction, partners in (("12", self.partners_12), ("21", self.partners_21))
                    for name in ("indptr", "indices", "sims")
                },
                thresh=np.float64(self.thresh),
                top_k=np.int64(-1 if self.top_k is None else self.top_k),
                best_similarity=np.float64(self.best_similarity),
                build_seconds=np.float64(self.build_seconds),
            )

    @classmethod
    def from_disk(cls, path: Union[str, Path]) -> "Shortlist":
        with np.load(Path(path)) as data:
            partners = {
                direction: PartnerContexts(data[f"indptr_{direction}"], data[f"indices_{direction}"], data[f"sims_{direction}"])
                for direction in ("12", "21")
            }
            top_k = int(data["top_k"])
            return cls(
                partners_12=partners["12"],
                partners_21=partners["21"],
                thresh=float(data["thresh"]),
                top_k=None if top_k < 0 else top_k,
                best_similarity=float(data["best_similarity"]),
                build_seconds=float(data["build_seconds"]),
            )


def build_shortlist(
    U1: np.ndarray, U2: np.ndarray, thresh: float, top_k: Optional[int] = None, block_size: int = 1024
) -> Shortlist:
    """Pairs of rows of U1 [n1, d] and U2 [n2, d] with cosine similarity > thresh (compared in float32).

    Zero rows never match. With ``top_k``, each context keeps only its ``top_k`` most similar partners above the
    threshold (ties by lower index), in each direction separately. Rows of U1 are processed ``block_size`` at a time
    against all of U2; the per-column top-k of U2 is kept as a running [n2, top_k] table merged block by block.
    """
    start = time.perf_counter()
    if not np.isfinite(thresh):
        raise ValueError(f"build_shortlist: thresh must be finite, got {thresh}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"build_shortlist: top_k must be None or >= 1, got {top_k}")
    if block_size < 1:
        raise ValueError(f"build_shortlist: block_size must be >= 1, got {block_size}")
    X1, keep1 = _unit_rows(U1, "U1")
    X2, keep2 = _unit_rows(U2, "U2")
    if X1.shape[1] != X2.shape[1]:
        raise ValueError(f"build_shortlist: U1 has {X1.shape[1]} columns but U2 has {X2.shape[1]}")
    n1, n2, m1, m2 = len(U1), len(U2), len(X1), len(X2)
    t32 = np.float32(thresh)
    above = np.nextafter(t32, np.float32(np.inf))
    k = top_k
    if k is not None:
        col_sims = np.full((m2, k), -np.inf, dtype=np.float32)
        col_rows = np.full((m2, k), -1, dtype=np.int64)
    found_rows, found_cols, found_sims = [], [], []
    best_pass = best_other = -np.inf
    b_max = min(block_size, m1)
    buffer = np.empty((b_max, m2), dtype=np.float32)
    mask_buffer = np.empty((b_max, m2), dtype=bool)
    for lo in range(0, m1 if m2 else 0, block_size):
        S = np.matmul(X1[lo:lo + block_size], X2.T, out=buffer[: min(block_size, m1 - lo)])
        mask = mask_buffer[: len(S)]
        budget = S.size // _DENSE_FRACTION
        dense = k is not None and np.count_nonzero(S[::_SAMPLE_STRIDE] > t32) * _SAMPLE_STRIDE > budget
        if not dense:
            np.greater(S, t32, out=mask)
            dense = k is not None and np.count_nonzero(mask) > budget
        if dense:  # keep only entries that can be among their row's top k
            np.greater_equal(S, np.maximum(_kth_lower_bound(S, k, axis=1), above)[:, None], out=mask)
        r, c, s = _entries(S, mask)
        if len(s) == 0:
            if best_pass == -np.inf:
                best_other = max(best_other, float(S.max()))
            continue
        best_pass = max(best_pass, float(s.max()))
        if k is not None:
            if dense:  # entries that beat their column's running k-th best, pruned by a bound if too many
                floor = np.nextafter(np.maximum(col_sims[:, k - 1], t32), np.float32(np.inf))
                if np.count_nonzero(np.greater_equal(S, floor[None, :], out=mask)) > budget:
                    np.greater_equal(S, np.maximum(floor, _kth_lower_bound(S, k, axis=0))[None, :], out=mask)
                col_r, col_c, col_s = _entries(S, mask)
            else:
                beats = s > col_sims[c, k - 1]
                col_r, col_c, col_s = r[beats], c[beats], s[beats]
            _merge_columns(col_sims, col_rows, col_r + lo, col_c, col_s)
        order = np.argsort((r.astype(np.uint64) << np.uint64(32)) | _descending_key(s), kind="stable")
        r, c, s = r[order], c[order], s[order]
        if k is not None:
            top = _ranks(r) < k
            r, c, s = r[top], c[top], s[top]
        found_rows.append(keep1[r + lo])
        found_cols.append(keep2[c])
        found_sims.append(s)
    rows = np.concatenate([np.zeros(0, dtype=np.int64)] + found_rows)
    cols = np.concatenate([np.zeros(0, dtype=np.int64)] + found_cols)
    sims = np.concatenate([np.zeros(0, dtype=np.float32)] + found_sims)
    partners_12 = _csr(n1, rows, cols, sims)
    if k is None:
        order = np.argsort((cols.astype(np.uint64) << np.uint64(32)) | _descending_key(sims), kind="stable")
        partners_21 = _csr(n2, cols[order], rows[order], sims[order])
    else:
        valid = col_rows >= 0
        counts = np.zeros(n2, dtype=np.int64)
        counts[keep2] = valid.sum(axis=1)
        partners_21 = PartnerContexts(
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            keep1[col_rows[valid]].astype(np.int32),
            col_sims[valid],
        )
    return Shortlist(
        partners_12=partners_12,
        partners_21=partners_21,
        thresh=float(thresh),
        top_k=top_k,
        best_similarity=best_pass if best_pass > -np.inf else best_other,
        build_seconds=time.perf_counter() - start,
    )


def _unit_rows(U: np.ndarray, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """L2-normalised nonzero rows of U (float32 [m, d]) and their row numbers in U (int64 [m])."""
    X = np.asarray(U, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"build_shortlist: {name} must be 2-dimensional [n, d], got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"build_shortlist: {name} contains NaN or infinite values")
    norms = np.linalg.norm(X, axis=1)
    keep = np.flatnonzero(norms > 0)
    return X[keep] / norms[keep, None], keep


def _entries(S: np.ndarray, mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, values) of the True entries of mask in S, row-major order."""
    flat = np.flatnonzero(mask)
    r, c = np.divmod(flat, S.shape[1])
    return r, c, S.ravel()[flat]


def _kth_lower_bound(S: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Lower bound on the k-th largest value of each row (axis=1) or column (axis=0) of S [b, m]: the k-th largest of
    the maxima of k or more disjoint groups of entries (strided, so each is an elementwise max of contiguous slices);
    -inf where S has fewer than k entries on that axis."""
    length = S.shape[axis]
    if length < k:
        return np.full(S.shape[1 - axis], -np.inf, dtype=np.float32)
    group = max(1, min(_GROUP, length // k))
    n_groups = length // group
    if axis == 1:
        maxima = S[:, : group * n_groups].reshape(len(S), group, n_groups).max(axis=1)
    else:
        maxima = S[: group * n_groups].reshape(group, n_groups, S.shape[1]).max(axis=0).T
    return np.partition(maxima, n_groups - k, axis=1)[:, n_groups - k]


def _merge_columns(col_sims: np.ndarray, col_rows: np.ndarray, r: np.ndarray, c: np.ndarray, s: np.ndarray) -> None:
    """Merge new entries (rows r, columns c, sims s; row-major, rows above all rows already kept) into the running
    per-column top-k tables col_sims / col_rows [m2, k] (sorted by decreasing similarity, -inf / -1 when empty)."""
    if len(c) == 0:
        return
    k = col_sims.shape[1]
    touched = np.flatnonzero(np.bincount(c, minlength=len(col_sims)))
    all_c = np.concatenate([np.repeat(touched, k), c])
    all_s = np.concatenate([col_sims[touched].ravel(), s])
    all_r = np.concatenate([col_rows[touched].ravel(), r])
    order = np.argsort((all_c.astype(np.uint64) << np.uint64(32)) | _descending_key(all_s), kind="stable")
    keep = order[_ranks(all_c[order]) < k]
    col_sims[touched] = all_s[keep].reshape(-1, k)
    col_rows[touched] = all_r[keep].reshape(-1, k)


def _descending_key(sims: np.ndarray) -> np.ndarray:
    """uint64 keys < 2**32 whose ascending order is the descending order of the float32 sims (-0.0 equals 0.0)."""
    bits = (np.asarray(sims, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    ascending = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    return (np.uint32(0xFFFFFFFF) - ascending).astype(np.uint64)


def _ranks(groups: np.ndarray) -> np.ndarray:
    """Position of each entry within its run of equal values in the sorted array groups."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], groups[1:] != groups[:-1]]))
    return np.arange(len(groups)) - np.repeat(starts, np.diff(np.append(starts, len(groups))))


def _csr(n: int, rows: np.ndarray, cols: np.ndarray, sims: np.ndarray) -> PartnerContexts:
    """PartnerContexts from entries already sorted by row."""
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int64)
    return PartnerContexts(indptr, cols.astype(np.int32), sims.astype(np.float32))


def _pair_codes(partners: PartnerContexts, n2: int, transposed: bool) -> np.ndarray:
    """Pairs of one direction as int64 codes c1 * n2 + c2."""
    owners = np.repeat(np.arange(len(partners), dtype=np.int64), partners.counts())
    others = partners.indices.astype(np.int64)
    return others * n2 + owners if transposed else owners * n2 + others
