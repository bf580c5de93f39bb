"""The per-token tag scores the coupling compares across two heads (the ``score`` of ``CouplingModel.v3``)."""
from typing import Callable, Sequence, Tuple

import numpy as np
import torch
from torch import nn


def transform_scores(kind: str, emissions: np.ndarray, lengths: Sequence[int], crf=None) -> Tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The per-token tag scores the coupling compares, from one head's emission scores.

    emissions: float32 [n_tokens, T], the head's docs concatenated (``lengths`` tokens each). kind: "emission" (as
    they are: the paper), "log_softmax" (normalised over the T tags per token) or "marginal" (the CRF ``crf``'s
    posterior p(tag_i = t | doc) by forward-backward; its transitions get the gradient too). Returns (scores
    [n_tokens, T], backprop: d_scores [n_tokens, T] -> d_emissions [n_tokens, T]).
    """
    if kind == "emission":
        return emissions, lambda d: d
    if kind not in ("log_softmax", "marginal"):
        raise ValueError(f"score must be one of emission, log_softmax, marginal, got {kind!r}")
    device = crf.transitions.device if crf is not None else torch.device("cpu")
    leaf = torch.tensor(emissions, device=device, requires_grad=True)
    if kind == "log_softmax":
        out = torch.log_softmax(leaf, dim=-1)
    else:
        if crf is None:
            raise ValueError("score 'marginal' needs the head's CRF")
        pieces = torch.split(leaf, list(lengths))
        padded = nn.utils.rnn.pad_sequence(pieces, batch_first=True)
        mask = torch.arange(padded.shape[1], device=device)[None, :] < torch.tensor(list(lengths), device=device)[:, None]
        out = crf.marginals(padded, mask)[mask]

    def backprop(d_scores: np.ndarray) -> np.ndarray:
        leaf.grad = None
        out.backward(torch.as_tensor(d_scores, dtype=out.dtype, device=device))
        return leaf.grad.detach().cpu().numpy()

    return out.detach().cpu().numpy(), backprop

