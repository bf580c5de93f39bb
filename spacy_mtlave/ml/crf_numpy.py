"""The CRF's inference (Viterbi with BIO constraints, forward-backward marginals) in numpy, for the CPU.

Same algorithms and the same float32 arithmetic as :class:`spacy_mtlave.ml.crf.CRF` (``decode``, ``marginals``), without
torch's per-operation overhead: a title is decoded with ~3 small array operations per token, which is where a
batch-1 ``nlp(title)`` spent about a third of its time (per-step torch calls on [1, T] tensors). Paths are identical
(ties broken by the lowest index, as torch's argmax does) and marginals agree to float32 rounding.

Shapes: B = batch, L = padded length, T = number of tags; ``mask`` [B, L] bool, a prefix of True per row.
"""
import math
from typing import List, Tuple

import numpy as np


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

    def decode(self, emissions: np.ndarray, mask: np.ndarray, constrained: bool = True) -> List[List[int]]:
        """Best tag sequence per row (length = row length); with ``constrained``, transitions outside the BIO
        constraints are forbidden and a row with no allowed sequence is decoded unconstrained."""
        if emissions.shape[1] == 0:
            return [[] for _ in range(emissions.shape[0])]
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


def _log_matmul(transitions: np.ndarray):
    """f(x) = logsumexp_i(x[:, i, None] + transitions[i, :]), x [B, T] -> [B, T] (as ``crf._log_matmul``)."""
    col_max = transitions.max(axis=0)
    spread = float((col_max - transitions.min(axis=0)).max())
    if spread <= -0.5 * math.log(np.finfo(np.float32).tiny):
        scaled = np.exp(transitions - col_max).astype(np.float32)

        def step(x: np.ndarray) -> np.ndarray:
            x_max = x.max(axis=1, keepdims=True)
            with np.errstate(divide="ignore"):
                return (np.log(np.exp(x - x_max) @ scaled) + x_max + col_max).astype(np.float32)

        return step
    to_from = np.ascontiguousarray(transitions.T)

    def step_slow(x: np.ndarray) -> np.ndarray:
        z = x[:, None, :] + to_from[None, :, :]
        z_max = z.max(axis=2, keepdims=True)
        return (np.log(np.exp(z - z_max).sum(axis=2)) + z_max[:, :, 0]).astype(np.float32)

    return step_slow
