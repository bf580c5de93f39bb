"""Linear-chain conditional random field over BIO tags, as a torch module.

Shapes: B = batch, L = padded length, T = number of tags. `mask` is a bool
[B, L] tensor whose True entries are a prefix of each row (rows may be empty).
"""
import math
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..bio import parse_tag


class CRF(nn.Module):
    """Linear-chain CRF with transition scores `transitions[from, to]`, start
    and end scores, and BIO constraints (`allowed`, `allowed_start`) that only
    `decode(constrained=True)` applies."""

    def __init__(self, n_tags: int) -> None:
        super().__init__()
        if n_tags < 1:
            raise ValueError(f"n_tags must be positive, got {n_tags}")
        self.n_tags = n_tags
        self.transitions = nn.Parameter(torch.empty(n_tags, n_tags).uniform_(-0.1, 0.1))
        self.start = nn.Parameter(torch.empty(n_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(n_tags).uniform_(-0.1, 0.1))
        self.register_buffer("allowed", torch.ones(n_tags, n_tags, dtype=torch.bool))
        self.register_buffer("allowed_start", torch.ones(n_tags, dtype=torch.bool))

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor, allowed: Optional[Tensor] = None, constrained: bool = False) -> Tensor:
        """Negative log-likelihood of `tags` [B, L] -> [B]; with `allowed` [B, L, T] bool, the negative partial-label
        log-likelihood (`tags` unused) of :meth:`partial_log_likelihood`."""
        if allowed is not None:
            return -self.partial_log_likelihood(emissions, allowed, mask, constrained)
        return -self.log_likelihood(emissions, tags, mask)

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """log p(tags | emissions) [B]; 0 for empty rows."""
        self._check(emissions, mask)
        if tags.shape != mask.shape:
            raise ValueError(f"tags shape {tuple(tags.shape)} != mask shape {tuple(mask.shape)}")
        gold = tags[mask]
        if gold.numel() and (gold.min() < 0 or gold.max() >= self.n_tags):
            raise ValueError(f"tags must be in [0, {self.n_tags}) on unmasked positions")
        if emissions.shape[1] == 0:
            return emissions.new_zeros(emissions.shape[0])
        gold_score = self._gold_score(emissions, tags.masked_fill(~mask, 0), mask)
        return gold_score - self.log_partition(emissions, mask)

    def partial_log_likelihood(self, emissions: Tensor, allowed: Tensor, mask: Tensor, constrained: bool = False) -> Tensor:
        """log p(tag_i in allowed_i for every i | emissions) [B]: the log-sum over every path consistent with the
        partial labels (tags `allowed` [B, L, T] bool per position) minus log Z; 0 for empty rows. One allowed tag per
        position gives `log_likelihood`; every tag allowed gives 0. With `constrained`, the consistent paths must also
        respect the BIO constraints (`allowed`, `allowed_start` of :meth:`set_bio_constraints`; Z stays over all
        paths). Every non-empty row needs at least one consistent path (see :meth:`has_consistent_path`)."""
        self._check(emissions, mask)
        if allowed.dtype != torch.bool or allowed.shape != emissions.shape:
            raise ValueError(f"allowed must be bool {tuple(emissions.shape)}, got {allowed.dtype} {tuple(allowed.shape)}")
        if emissions.shape[1] == 0:
            return emissions.new_zeros(emissions.shape[0])
        feasible = self.has_consistent_path(allowed, mask, constrained)
        if not feasible.all():
            rows = torch.nonzero(~feasible).flatten().tolist()
            raise ValueError(f"rows {rows} have no tag sequence consistent with their allowed tags")
        barred = self._barred_score(emissions)
        start, moves = self.start, None
        if constrained:
            start = start.masked_fill(~self.allowed_start, barred)
            moves = self.allowed
        restricted = emissions.masked_fill(~allowed, barred)
        alphas = self._alphas(restricted, mask, self.transitions, start, moves, barred)
        consistent = torch.logsumexp(alphas[-1] + self.end, dim=1)
        consistent = torch.where(mask[:, 0], consistent, torch.zeros_like(consistent))
        return consistent - self.log_partition(emissions, mask)

    def has_consistent_path(self, allowed: Tensor, mask: Tensor, constrained: bool = False) -> Tensor:
        """Whether some tag sequence takes an allowed tag at every position of a row (and, with `constrained`,
        respects the BIO constraints) [B] bool; empty rows are consistent."""
        with torch.no_grad():
            moves = self.allowed if constrained else torch.ones_like(self.allowed)
            reach = allowed[:, 0] & (self.allowed_start if constrained else True)
            for i in range(1, allowed.shape[1]):
                nxt = (reach[:, :, None] & moves[None]).any(dim=1) & allowed[:, i]
                reach = torch.where(mask[:, i, None], nxt, reach)
            return reach.any(dim=1) | ~mask[:, 0]

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z: log-sum-exp of all tag sequence scores [B]; 0 for empty rows."""
        self._check(emissions, mask)
        if emissions.shape[1] == 0:
            return emissions.new_zeros(emissions.shape[0])
        log_z = torch.logsumexp(self._alphas(emissions, mask)[-1] + self.end, dim=1)
        return torch.where(mask[:, 0], log_z, torch.zeros_like(log_z))

    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Posterior p(tag_i = t | emissions) by forward-backward [B, L, T];
        each unmasked position sums to 1, padding is 0."""
        self._check(emissions, mask)
        B, L, T = emissions.shape
        if L == 0:
            return emissions.new_zeros(B, 0, T)
        alphas = self._alphas(emissions, mask)
        backward_step = _log_matmul(self.transitions.t())
        steps, keep = emissions.unbind(1), mask[:, :, None].unbind(1)
        end = self.end.expand(B, T)
        betas = [end]
        for i in range(L - 2, -1, -1):
            nxt = backward_step(betas[-1] + steps[i + 1])
            betas.append(torch.where(keep[i + 1], nxt, end))
        scores = torch.stack(alphas, dim=1) + torch.stack(betas[::-1], dim=1)
        probs = torch.softmax(scores, dim=2)
        return probs.masked_fill(~mask[:, :, None], 0.0)

    def decode(self, emissions: Tensor, mask: Tensor, constrained: bool = True) -> List[List[int]]:
        """Viterbi best tag sequence per row (length = row length). With
        `constrained`, transitions outside `allowed` / `allowed_start` are
        forbidden; a row with no allowed sequence is decoded unconstrained."""
        self._check(emissions, mask)
        if emissions.shape[1] == 0:
            return [[] for _ in range(emissions.shape[0])]
        with torch.no_grad():
            if not constrained:
                paths, _ = self._viterbi(emissions, mask, self.transitions, self.start)
            else:
                neg_inf = float("-inf")
                transitions = self.transitions.masked_fill(~self.allowed, neg_inf)
                start = self.start.masked_fill(~self.allowed_start, neg_inf)
                paths, best = self._viterbi(emissions, mask, transitions, start)
                infeasible = torch.isneginf(best) & mask[:, 0]
                if infeasible.any():
                    free, _ = self._viterbi(emissions, mask, self.transitions, self.start)
                    paths = torch.where(infeasible[:, None], free, paths)
        lengths = mask.sum(dim=1).tolist()
        return [row[:n] for row, n in zip(paths.tolist(), lengths)]

    def to_numpy(self) -> "crf_numpy.NumpyCRF":  # noqa: F821
        """A numpy snapshot of the parameters for inference on the CPU (same paths, same marginals to float32
        rounding; see :mod:`spacy_mtlave.ml.crf_numpy`)."""
        from .crf_numpy import NumpyCRF

        with torch.no_grad():
            arrays = [t.detach().cpu().numpy() for t in (self.transitions, self.start, self.end, self.allowed, self.allowed_start)]
        return NumpyCRF(*arrays)

    def set_bio_constraints(self, tag_names: List[str]) -> None:
        """Allow "I-x" only after "B-x" or "I-x", and never as the first tag."""
        if len(tag_names) != self.n_tags:
            raise ValueError(f"tag_names has {len(tag_names)} names, expected {self.n_tags}")
        parsed = [parse_tag(name) for name in tag_names]
        allowed = torch.ones(self.n_tags, self.n_tags, dtype=torch.bool)
        allowed_start = torch.ones(self.n_tags, dtype=torch.bool)
        for j, (prefix_j, label_j) in enumerate(parsed):
            if prefix_j != "I":
                continue
            allowed_start[j] = False
            for i, (prefix_i, label_i) in enumerate(parsed):
                allowed[i, j] = prefix_i in ("B", "I") and label_i == label_j
        self.allowed.copy_(allowed)
        self.allowed_start.copy_(allowed_start)

    def _barred_score(self, emissions: Tensor) -> float:
        """The score given to a tag or move a consistent path may not take. Finite, because -inf turns the gradient
        of a log-sum-exp whose terms are all excluded into NaN; low enough that every barred path together weighs
        less than exp(-100) of any allowed one: any path scores within +-bound, and there are at most T^L paths."""
        with torch.no_grad():
            B, L, T = emissions.shape
            bound = L * (float(emissions.abs().max()) + float(self.transitions.abs().max()))
            bound += float(self.start.abs().max()) + float(self.end.abs().max())
        return -(2.0 * bound + L * math.log(T + 1) + 100.0)

    def _check(self, emissions: Tensor, mask: Tensor) -> None:
        if emissions.dim() != 3 or emissions.shape[2] != self.n_tags:
            raise ValueError(
                f"emissions must be [B, L, {self.n_tags}], got {tuple(emissions.shape)}"
            )
        if emissions.dtype != self.transitions.dtype:
            raise ValueError(
                f"emissions dtype {emissions.dtype} != CRF dtype {self.transitions.dtype}"
            )
        if mask.dtype != torch.bool or mask.shape != emissions.shape[:2]:
            raise ValueError(
                f"mask must be bool {tuple(emissions.shape[:2])}, "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        if (mask[:, 1:] & ~mask[:, :-1]).any():
            raise ValueError("mask rows must be a prefix of True followed by False")

    def _alphas(
        self, emissions: Tensor, mask: Tensor, transitions: Optional[Tensor] = None, start: Optional[Tensor] = None,
        moves: Optional[Tensor] = None, barred: float = 0.0,
    ) -> List[Tensor]:
        """Forward scores [B, T] per position: log-sum-exp over paths ending
        there; past a row's end they repeat its last position. `transitions`
        and `start` default to the CRF's own; `moves` [T, T] bool restricts the
        transitions a path may take (see `_log_matmul`)."""
        step = _log_matmul(self.transitions if transitions is None else transitions, moves, barred)
        # unbind once: indexing emissions[:, i] per step costs a full-size
        # zero gradient per step in the backward pass
        steps, keep = emissions.unbind(1), mask[:, :, None].unbind(1)
        alphas = [(self.start if start is None else start) + steps[0]]
        for i in range(1, len(steps)):
            alphas.append(torch.where(keep[i], step(alphas[-1]) + steps[i], alphas[-1]))
        return alphas

    def _gold_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Score of `tags` [B, L] (0 on padding) -> [B]."""
        emitted = emissions.gather(2, tags[:, :, None]).squeeze(2).masked_fill(~mask, 0.0)
        moved = self.transitions[tags[:, :-1], tags[:, 1:]].masked_fill(~mask[:, 1:], 0.0)
        lengths = mask.sum(dim=1)
        last = tags.gather(1, (lengths - 1).clamp_min(0)[:, None]).squeeze(1)
        edges = self.start[tags[:, 0]] + self.end[last]
        return emitted.sum(1) + moved.sum(1) + edges.masked_fill(lengths == 0, 0.0)

    def _viterbi(
        self, emissions: Tensor, mask: Tensor, transitions: Tensor, start: Tensor
    ) -> Tuple[Tensor, Tensor]:
        """Best paths [B, L] (valid up to each row's length) and their scores [B].

        The forward pass keeps only max scores, reducing a [from, B, to]
        tensor over its outer axis (amax this way is ~4x cheaper than max with
        indices); the backtrack recomputes one argmax per row and step."""
        to_from = transitions.t().contiguous()
        steps, keep = emissions.unbind(1), mask[:, :, None].unbind(1)
        scores = [start + steps[0]]
        for i in range(1, len(steps)):
            from_score = scores[-1].t().contiguous()[:, :, None]
            best = (from_score + transitions[:, None, :]).amax(dim=0)
            scores.append(torch.where(keep[i], best + steps[i], scores[-1]))
        best_score, cur = (scores[-1] + self.end).max(dim=1)
        path = [cur]
        for i in range(emissions.shape[1] - 1, 0, -1):
            prev = (scores[i - 1] + to_from[cur]).argmax(dim=1)
            cur = torch.where(mask[:, i], prev, cur)
            path.append(cur)
        return torch.stack(path[::-1], dim=1), best_score


def _log_matmul(transitions: Tensor, moves: Optional[Tensor] = None, barred: float = 0.0) -> Callable[[Tensor], Tensor]:
    """Return f(x) = logsumexp_i(x[:, i, None] + transitions[i, :]), x [B, T] -> [B, T];
    with `moves` [T, T] bool, only over the allowed moves i -> j.

    When every column of `transitions` (its allowed entries) spans at most
    -log(tiny)/2, the sum is computed as a rescaled matrix product
    exp(x - max x) @ exp(transitions - column max): the largest term of each
    output is then at least sqrt(tiny), so nothing that matters underflows.
    A forbidden move is a 0 in that matrix; an output that only forbidden
    moves reach is floored at tiny (log(0) would make the gradient NaN), a
    weight of at most tiny next to the allowed paths. Otherwise it falls
    back to logsumexp over a [B, T, T] tensor, forbidden moves scored
    `barred`. The shifts are constants of the function, so they are detached.
    """
    tiny = torch.finfo(transitions.dtype).tiny
    detached = transitions.detach()
    if moves is None:
        col_max, col_min = detached.max(dim=0).values, detached.min(dim=0).values
    else:
        col_max = detached.masked_fill(~moves, float("-inf")).max(dim=0).values
        col_min = detached.masked_fill(~moves, float("inf")).min(dim=0).values
        reachable = moves.any(dim=0)
        col_max = torch.where(reachable, col_max, torch.zeros_like(col_max))
        col_min = torch.where(reachable, col_min, col_max)
    spread = (col_max - col_min).max()
    if spread.item() <= -0.5 * math.log(tiny):
        scaled = torch.exp(transitions - col_max)
        if moves is None:

            def step(x: Tensor) -> Tensor:
                x_max = x.detach().max(dim=1, keepdim=True).values
                return torch.log(torch.exp(x - x_max) @ scaled) + x_max + col_max

            return step
        scaled = scaled * moves.to(scaled.dtype)
        return lambda x: _floored_step(x, scaled, col_max, tiny)
    if moves is not None:
        transitions = transitions.masked_fill(~moves, barred)
    to_from = transitions.t().contiguous()
    return lambda x: torch.logsumexp(x[:, None, :] + to_from, dim=2)


def _floored_step(x: Tensor, scaled: Tensor, col_max: Tensor, tiny: float) -> Tensor:
    x_max = x.detach().max(dim=1, keepdim=True).values
    return torch.log((torch.exp(x - x_max) @ scaled).clamp_min(tiny)) + x_max + col_max
