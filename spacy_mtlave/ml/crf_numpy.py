"""The CRF's inference (Viterbi with BIO constraints, forward-backward marginals) in numpy, for the CPU.

Same algorithms and the same float32 arithmetic as :class:`spacy_mtlave.ml.crf.CRF` (``decode``, ``marginals``), without
torch's per-operation overhead: a title is decoded with ~3 small array operations per token, which is where a
batch-1 ``nlp(title)`` spent about a third of its time (per-step torch calls on [1, T] tensors). Paths are identical
(ties broken by the lowest index, as torch's argmax does) and marginals agree to float32 rounding.

One unpadded row (a batch-1 ``nlp(title)``) takes a mask-free path with the same numbers, bit for bit, as the batched
code run on that row: Viterbi keeps each step's argmax instead of recomputing it in the backtrack, and forward-backward
runs step i of the forward and step L-1-i of the backward recursion as one stacked operation. ``numpy_crf`` keeps the
snapshot of a CRF's parameters between calls while they stay equal.

Shapes: B = batch, L = padded length, T = number of tags; ``mask`` [B, L] bool, a prefix of True per row.
"""
import math
import weakref
from typing import List, Tuple

import numpy as np
import torch


class NumpyCRF:
    """A snapshot of a CRF's parameters (float32 numpy): ``transitions`` [T, T] (from, to), ``start`` [T], ``end`` [T],
    ``allowed`` [T, T] and ``allowed_start`` [T] (the BIO constraints)."""

    def __init__(self, transitions: np.ndarray, start: np.ndarray, end: np.ndarray, allowed: np.ndarray, allowed_start: np.ndarray) -> None:
        self.transitions = np.ascontiguousarray(transitions, dtype=np.float32)
        self.start = np.asarray(start, dtype=np.float32)
        self.end = np.asarray(end, dtype=np.float32)
        self.constrained_transitions = np.where(allowed, self.transitions, np.float32(-np.inf)).astype(np.float32)
        self.constrained_start = np.where(allowed_start, self.start, np.float32(-np.inf)).astype(np.float32)
        self._forward = _log_matmul(self.transitions)
        self._backward = _log_matmul(np.ascontiguousarray(self.transitions.T))
        forward, backward = _scaled(self.transitions), _scaled(np.ascontiguousarray(self.transitions.T))
        # both directions of forward-backward as one [2, 1, T] @ [2, T, T] step (the per-row arithmetic of
        # ``_log_matmul``'s fast case, so the same numbers); None when either direction needs the slow case
        self._both = None if forward is None or backward is None else (
            np.stack([forward[0], backward[0]]), np.stack([forward[1], backward[1]])[:, None, :])

    def decode(self, emissions: np.ndarray, mask: np.ndarray, constrained: bool = True) -> List[List[int]]:
        """Best tag sequence per row (length = row length); with ``constrained``, transitions outside the BIO
        constraints are forbidden and a row with no allowed sequence is decoded unconstrained."""
        if emissions.shape[1] == 0:
            return [[] for _ in range(emissions.shape[0])]
        if emissions.shape[0] == 1 and mask.all():  # one unpadded row (batch 1): no masks
            transitions, start = (self.constrained_transitions, self.constrained_start) if constrained else (self.transitions, self.start)
            path, best = _viterbi_one(emissions[0], transitions, start, self.end)
            if constrained and np.isneginf(best):
                path, _ = _viterbi_one(emissions[0], self.transitions, self.start, self.end)
            return [path]
        return self._decode_batch(emissions, mask, constrained)

    def _decode_batch(self, emissions: np.ndarray, mask: np.ndarray, constrained: bool) -> List[List[int]]:
        """``decode`` of a padded batch (masked steps)."""
        if not constrained:
            paths, _ = _viterbi(emissions, mask, self.transitions, self.start, self.end)
        else:
            paths, best = _viterbi(emissions, mask, self.constrained_transitions, self.constrained_start, self.end)
            infeasible = np.isneginf(best) & mask[:, 0]
            if infeasible.any():
                free, _ = _viterbi(emissions, mask, self.transitions, self.start, self.end)
                paths = np.where(infeasible[:, None], free, paths)
        lengths = mask.sum(axis=1)
        return [row[:n].tolist() for row, n in zip(paths, lengths)]

    def marginals(self, emissions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Posterior p(tag_i = t | emissions) [B, L, T]; each unmasked position sums to 1, padding is 0."""
        B, L, T = emissions.shape
        if L == 0:
            return np.zeros((B, 0, T), dtype=np.float32)
        if B == 1 and mask.all():
            return self._marginals_one(emissions[0])[None]
        return self._marginals_batch(emissions, mask)

    def _marginals_batch(self, emissions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``marginals`` of a padded batch (masked steps)."""
        B, L, T = emissions.shape
        keep = mask[:, :, None]
        alphas = np.empty((B, L, T), dtype=np.float32)
        alphas[:, 0] = self.start + emissions[:, 0]
        for i in range(1, L):
            alphas[:, i] = np.where(keep[:, i], self._forward(alphas[:, i - 1]) + emissions[:, i], alphas[:, i - 1])
        betas = np.empty((B, L, T), dtype=np.float32)
        end = np.broadcast_to(self.end, (B, T))
        betas[:, L - 1] = end
        for i in range(L - 2, -1, -1):
            betas[:, i] = np.where(keep[:, i + 1], self._backward(betas[:, i + 1] + emissions[:, i + 1]), end)
        scores = alphas + betas
        scores = scores - scores.max(axis=2, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=2, keepdims=True)
        return np.where(keep, probs, np.float32(0.0)).astype(np.float32)

    def _marginals_one(self, emissions: np.ndarray) -> np.ndarray:
        """``marginals`` of one unpadded row, emissions [L, T] -> [L, T]: the same operations on [1, T] slices,
        without the masks."""
        L, T = emissions.shape
        alphas = np.empty((L, T), dtype=np.float32)
        alphas[0] = self.start + emissions[0]
        if self._both is not None:
            return self._marginals_one_stacked(emissions, alphas)
        for i in range(1, L):
            alphas[i] = self._forward(alphas[i - 1 : i]) + emissions[i]
        betas = np.empty((L, T), dtype=np.float32)
        betas[L - 1] = self.end
        for i in range(L - 2, -1, -1):
            betas[i] = self._backward(betas[i + 1 : i + 2] + emissions[i + 1])
        scores = alphas + betas
        scores = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs

    def _marginals_one_stacked(self, emissions: np.ndarray, alphas: np.ndarray) -> np.ndarray:
        """``_marginals_one`` with step i of the forward and step L-1-i of the backward recursion in one stacked
        operation each (row-wise the same arithmetic)."""
        L, T = emissions.shape
        scaled, col_max = self._both
        betas = np.empty((L, T), dtype=np.float32)
        betas[L - 1] = self.end
        x = np.empty((2, 1, T), dtype=np.float32)
        with np.errstate(divide="ignore"):
            for i in range(1, L):
                j = L - 1 - i
                x[0, 0] = alphas[i - 1]
                np.add(betas[j + 1], emissions[j + 1], out=x[1, 0])
                x_max = x.max(axis=2, keepdims=True)
                y = np.log(np.matmul(np.exp(x - x_max), scaled)) + x_max + col_max
                np.add(y[0, 0], emissions[i], out=alphas[i])
                betas[j] = y[1, 0]
        scores = alphas + betas
        scores = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs


_SNAPSHOTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # CRF module -> (parameter copies, NumpyCRF)


def numpy_crf(crf) -> NumpyCRF:
    """``crf.to_numpy()``, kept between calls while the CRF's parameters and constraints stay equal (compared by
    value each call: a few small tensors, so training steps, ``from_disk`` and ``set_bio_constraints`` are all seen)."""
    tensors = (crf.transitions, crf.start, crf.end, crf.allowed, crf.allowed_start)
    cached = _SNAPSHOTS.get(crf)
    if cached is not None:
        copies, snapshot = cached
        if all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(copies, tensors)):
            return snapshot
    with torch.no_grad():
        copies = tuple(t.detach().clone() for t in tensors)
    # built from the copies: ``to_numpy``'s arrays share memory with the live parameters
    snapshot = NumpyCRF(*[c.cpu().numpy() for c in copies])
    _SNAPSHOTS[crf] = (copies, snapshot)
    return snapshot


def _viterbi_one(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> Tuple[List[int], float]:
    """``_viterbi`` of one unpadded row [L, T]: the same scores (from + transition, max over from, + emission); the
    backtrack reads the argmax kept at each step, which is the argmax ``_viterbi`` recomputes (same sums, ties to
    the lowest index)."""
    L, T = emissions.shape
    columns = np.arange(T)
    score = start + emissions[0]
    back = []
    for i in range(1, L):
        moves = score[:, None] + transitions
        best_from = moves.argmax(axis=0)
        back.append(best_from)
        score = moves[best_from, columns] + emissions[i]
    final = score + end
    cur = int(final.argmax())
    best = float(final[cur])
    path = [cur]
    for best_from in reversed(back):
        cur = int(best_from[cur])
        path.append(cur)
    path.reverse()
    return path, best


def _viterbi(emissions: np.ndarray, mask: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Best paths [B, L] (valid up to each row's length) and their scores [B]."""
    B, L, T = emissions.shape
    keep = mask[:, :, None]
    scores = np.empty((B, L, T), dtype=np.float32)
    scores[:, 0] = start + emissions[:, 0]
    for i in range(1, L):
        best = (scores[:, i - 1, :, None] + transitions[None, :, :]).max(axis=1)
        scores[:, i] = np.where(keep[:, i], best + emissions[:, i], scores[:, i - 1])
    final = scores[:, L - 1] + end
    cur = final.argmax(axis=1)
    best_score = final[np.arange(B), cur]
    path = np.empty((B, L), dtype=np.int64)
    path[:, L - 1] = cur
    to_from = transitions.T
    for i in range(L - 1, 0, -1):
        prev = (scores[:, i - 1] + to_from[cur]).argmax(axis=1)
        cur = np.where(mask[:, i], prev, cur)
        path[:, i - 1] = cur
    return path, best_score


def _scaled(transitions: np.ndarray):
    """(exp(transitions - column max), column max) when ``_log_matmul`` takes its fast case, else None."""
    col_max = transitions.max(axis=0)
    spread = float((col_max - transitions.min(axis=0)).max())
    if spread <= -0.5 * math.log(np.finfo(np.float32).tiny):
        return np.exp(transitions - col_max).astype(np.float32), col_max
    return None


def _log_matmul(transitions: np.ndarray):
    """f(x) = logsumexp_i(x[:, i, None] + transitions[i, :]), x [B, T] -> [B, T] (as ``crf._log_matmul``)."""
    col_max = transitions.max(axis=0)
    spread = float((col_max - transitions.min(axis=0)).max())
    if spread <= -0.5 * math.log(np.finfo(np.float32).tiny):
        scaled = np.exp(transitions - col_max).astype(np.float32)

        def step(x: np.ndarray) -> np.ndarray:
            x_max = x.max(axis=1, keepdims=True)
            with np.errstate(divide="ignore"):
                return (np.log(np.exp(x - x_max) @ scaled) + x_max + col_max).astype(np.float32, copy=False)

        return step
    to_from = np.ascontiguousarray(transitions.T)

    def step_slow(x: np.ndarray) -> np.ndarray:
        z = x[:, None, :] + to_from[None, :, :]
        z_max = z.max(axis=2, keepdims=True)
        return (np.log(np.exp(z - z_max).sum(axis=2)) + z_max[:, :, 0]).astype(np.float32, copy=False)

    return step_slow
